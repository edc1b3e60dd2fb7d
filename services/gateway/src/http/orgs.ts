import type { Principal, TokenKind } from "@hangar/auth";
import { AppNameSchema, parseDuration } from "@hangar/config";
import type { TokenRecord } from "@hangar/domain";
import { Hono } from "hono";
import { z } from "zod";
import type { Orgs } from "../orgs/orgs.js";
import { authorizeApp, authorizeOrg, coversOrg, principalOf } from "./authz.js";
import { readBody } from "./body.js";
import type { ApiEnv } from "./context.js";
import { ApiError } from "./errors.js";

const CreateOrgSchema = z.strictObject({
  slug: AppNameSchema,
  name: z.string().min(1).max(100).optional(),
});

const LimitsSchema = z.strictObject({
  limits: z.record(z.string().regex(/^[a-z_]{1,32}$/), z.number().int().min(0).max(1_000_000)),
});

const CreateTokenSchema = z.strictObject({
  kind: z.enum(["operator", "org", "deploy", "readonly", "machine-exec"]),
  org: AppNameSchema.optional(),
  app: AppNameSchema.optional(),
  expiry: z.string().max(32).optional(),
  name: z.string().max(100).optional(),
});

// The range a Date can hold (±8.64e15 ms from the epoch).
const DATE_MAX_MS = 8.64e15;

/**
 * A time in ms as ISO 8601, or null when there is none. Total: an expiry recorded before expiries were
 * bounded may lie past what a Date holds, and must not make every later listing of its org throw; it
 * renders as the last time a Date can express.
 */
export function iso(ms: number | undefined): string | null {
  if (ms === undefined || Number.isNaN(ms)) return null;
  return new Date(Math.max(-DATE_MAX_MS, Math.min(DATE_MAX_MS, Math.trunc(ms)))).toISOString();
}

/** The longest expiry a token can be minted with: 20 years, the default of Fly's deploy tokens. */
export const MAX_TOKEN_EXPIRY_MS = 20 * 365 * 24 * 3_600_000;

function tokenView(t: TokenRecord) {
  return {
    id: t.id,
    kind: t.kind,
    name: t.name,
    org: t.org ?? null,
    apps: t.apps,
    expires_at: iso(t.expiresAtMs),
    created_at: iso(t.createdAtMs),
    revoked_at: iso(t.revokedAtMs),
  };
}

/** A new token's expiry: the requested duration from now, never past the expiry of the token asking. */
function expiryOf(p: Principal, expiry: string | undefined): number | undefined {
  let requested: number | undefined;
  if (expiry !== undefined) {
    let ms: number;
    try {
      ms = parseDuration(expiry);
    } catch {
      throw ApiError.of("invalid_argument", `expiry: "${expiry}" is not a duration such as 720h`);
    }
    if (ms <= 0) throw ApiError.of("invalid_argument", "expiry: must be a positive duration");
    if (!(ms <= MAX_TOKEN_EXPIRY_MS)) {
      throw ApiError.of("invalid_argument", `expiry: at most ${MAX_TOKEN_EXPIRY_MS / 3_600_000}h (20 years)`);
    }
    requested = Date.now() + Math.ceil(ms);
  }
  // A token cannot outlive the one that minted it; otherwise an expiring token could renew itself.
  if (p.expiresAt === undefined) return requested;
  return requested === undefined ? p.expiresAt : Math.min(requested, p.expiresAt);
}

/** Whether the principal is the platform operator's: no org caveat and no narrowing caveat. */
const isOperator = (p: Principal) =>
  p.org === undefined && p.apps === undefined && !p.readOnly && !p.execOnly;

/** `/orgs`, `/tokens` and `/auth/whoami`: orgs, their tokens (minted, listed, revoked) and limits. */
export function orgRoutes(orgs: Orgs): Hono<ApiEnv> {
  return new Hono<ApiEnv>()
    .post("/orgs", async (c) => {
      const p = principalOf(c);
      const input = await readBody(c, CreateOrgSchema);
      // Creating an org hands out its admin token, so a token narrowed to apps, reads or exec may not.
      if (p.apps !== undefined || p.readOnly || p.execOnly) {
        throw ApiError.of("permission_denied", "only an org admin or operator token may create orgs");
      }
      const org = await orgs.createOrg(input.slug, input.name ?? input.slug);
      const issued = await orgs.issueToken({
        kind: "org",
        org: org.slug,
        apps: undefined,
        name: `${org.slug} admin`,
        expiresAtMs: expiryOf(p, undefined),
      });
      return c.json(
        {
          slug: org.slug,
          name: org.name,
          created_at: iso(org.createdAtMs),
          token: issued.token,
          token_id: issued.record.id,
        },
        201,
      );
    })
    .get("/orgs", (c) => {
      const p = principalOf(c);
      const list = orgs.orgs().filter((o) => coversOrg(p, o.slug));
      return c.json({
        orgs: list.map((o) => ({ slug: o.slug, name: o.name, created_at: iso(o.createdAtMs || undefined) })),
      });
    })
    .get("/orgs/:slug", (c) => {
      const slug = c.req.param("slug");
      authorizeOrg(c, slug, "read");
      const o = orgs.orgs().find((x) => x.slug === slug);
      return c.json({
        slug,
        name: o?.name ?? slug,
        created_at: iso(o?.createdAtMs || undefined),
        app_count: orgs.appsOf(slug).length,
        limits: orgs.limitsOf(slug),
      });
    })
    .put("/orgs/:slug/limits", async (c) => {
      const slug = c.req.param("slug");
      authorizeOrg(c, slug, "write");
      // Limits bound what a tenant may spend: an org's own admin setting them would lift its own bounds.
      if (!isOperator(principalOf(c)))
        throw ApiError.of("permission_denied", "only an operator token may set an org's limits");
      const input = await readBody(c, LimitsSchema);
      await orgs.setLimits(slug, input.limits);
      return c.json({ slug, limits: orgs.limitsOf(slug) });
    })
    .post("/tokens", async (c) => {
      const p = principalOf(c);
      const input = await readBody(c, CreateTokenSchema);
      const kind: TokenKind = input.kind;
      if (kind === "operator") {
        if (!isOperator(p))
          throw ApiError.of("permission_denied", "only an operator token may mint operator tokens");
        if (input.org !== undefined || input.app !== undefined) {
          throw ApiError.of("invalid_argument", "an operator token has no org or app");
        }
      }
      const org = kind === "operator" ? undefined : (input.org ?? p.org);
      if (kind !== "operator" && org === undefined) {
        throw ApiError.of("invalid_argument", "org: name the org the token is for");
      }
      if (kind === "deploy" && input.app === undefined) {
        throw ApiError.of("invalid_argument", "app: a deploy token is for one app (-a <app>)");
      }
      if (kind === "org" && input.app !== undefined) {
        throw ApiError.of(
          "invalid_argument",
          "app: an org token covers every app of its org; use a deploy token",
        );
      }
      if (org !== undefined) {
        // Minting is an org admin's act: a token scoped to apps, reads or exec cannot mint wider ones.
        authorizeOrg(c, org, "write");
        if (input.app !== undefined && authorizeApp(c, input.app, "write").org !== org) {
          throw ApiError.of("not_found", `app ${input.app} not found`);
        }
      }
      const issued = await orgs.issueToken({
        kind,
        org,
        apps: input.app === undefined ? undefined : [input.app],
        name: input.name ?? "",
        expiresAtMs: expiryOf(p, input.expiry),
      });
      const t = issued.record;
      return c.json(
        {
          id: t.id,
          token: issued.token,
          kind: t.kind,
          org: t.org ?? null,
          apps: t.apps,
          name: t.name,
          expires_at: iso(t.expiresAtMs),
        },
        201,
      );
    })
    .get("/tokens", (c) => {
      const p = principalOf(c);
      const org = c.req.query("org") || p.org;
      if (org !== undefined) authorizeOrg(c, org, "read");
      else if (!isOperator(p))
        throw ApiError.of("permission_denied", "only an operator token lists every org's tokens");
      return c.json({ tokens: orgs.tokens(org).map(tokenView) });
    })
    .delete("/tokens/:id", async (c) => {
      const p = principalOf(c);
      const id = c.req.param("id");
      const t = orgs.token(id);
      // Another org's token answers like one that does not exist.
      if (t === undefined || (t.org === undefined ? p.org !== undefined : !coversOrg(p, t.org))) {
        throw ApiError.of("not_found", `token ${id} not found`);
      }
      if (t.org === undefined) {
        if (!isOperator(p))
          throw ApiError.of("permission_denied", "only an operator token may revoke operator tokens");
      } else authorizeOrg(c, t.org, "write");
      await orgs.revokeToken(id);
      return c.body(null, 204);
    })
    .get("/auth/whoami", (c) => {
      const p = principalOf(c);
      return c.json({
        token_id: p.tokenId,
        kind: p.kind,
        org: p.org ?? null,
        apps: p.apps === undefined ? null : [...p.apps].sort(),
        read_only: p.readOnly,
        exec_only: p.execOnly,
        expires_at: iso(p.expiresAt),
      });
    });
}
