import type { Principal } from "@hangar/auth";
import type { Context } from "hono";
import type { ApiEnv } from "./context.js";
import { ApiError } from "./errors.js";

/** What a request does to a resource: read it, change it, or run something in a machine. */
export type Access = "read" | "write" | "exec";

/** The gateway's view of orgs: which org an app is in, which orgs exist, and their limits. */
export interface OrgDirectory {
  /** The org of an existing app; undefined when no such app exists. */
  orgOf(app: string): string | undefined;
  /** Whether the org exists: created on ORGS, or named by an app's (older, free-text) org_slug. */
  exists(org: string): boolean;
  /** Per-action limits per minute set for the org (rate-limit action name -> count). */
  limitsOf(org: string): Partial<Record<string, number>>;
}

/**
 * The caveat checks shared by apps and orgs. `execOnlyMayRead` lets a machine-exec token read the
 * machines it may exec into (Fly's machine-exec tokens can list and get them).
 */
function checkCaveats(p: Principal, access: Access, what: string, execOnlyMayRead: boolean): void {
  if (p.readOnly && access !== "read") {
    throw ApiError.of(
      "permission_denied",
      `token is read-only: it may not ${access === "exec" ? "exec into" : "change"} ${what}`,
    );
  }
  if (p.execOnly && access !== "exec" && !(execOnlyMayRead && access === "read")) {
    throw ApiError.of("permission_denied", `token is exec-only: it may only exec into machines of ${what}`);
  }
}

/** The request's principal (set by the token middleware). */
export function principalOf(c: Context<ApiEnv>): Principal {
  return c.get("principal");
}

/** Whether the token's org caveat covers `org` (an operator token covers every org). */
export function coversOrg(p: Principal, org: string): boolean {
  return p.org === undefined || p.org === org;
}

/** Whether the token may see `app` of `org` at all (org and apps caveats), for filtering lists. */
export function coversApp(p: Principal, org: string, app: string): boolean {
  return coversOrg(p, org) && (p.apps === undefined || p.apps.has(app));
}

// GET of an app's machines: the list, one machine, and its wait, events, lease and ps.
const MACHINE_READ = /^\/v1\/apps\/[^/]+\/machines(?:\/[^/]+(?:\/(?:wait|events|lease|ps))?)?$/;

/**
 * Checks the request's token may do `access` to `app`: 404 `app <x> not found` when the app does not
 * exist or is in another org; 403 `permission_denied` when it is the token's org but a caveat denies.
 * A machine-exec token may also GET the app's machines (Fly's machine-exec tokens list and get the
 * machines they exec into), whichever middleware or handler asks.
 */
export function authorizeApp(c: Context<ApiEnv>, app: string, access: Access): { org: string } {
  const p = principalOf(c);
  const org = c.get("orgs").orgOf(app);
  // Another org's app answers exactly like one that does not exist, so a token learns nothing of it.
  if (org === undefined || !coversOrg(p, org)) throw ApiError.of("not_found", `app ${app} not found`);
  if (p.apps !== undefined && !p.apps.has(app)) {
    throw ApiError.of("permission_denied", `token does not cover app ${app}`);
  }
  const machineRead = c.req.method === "GET" && MACHINE_READ.test(c.req.path);
  checkCaveats(p, access, `app ${app}`, machineRead);
  return { org };
}

/**
 * Checks the request's token may do `access` to org-level resources of `org` (create apps, tokens,
 * limits): 404 for an org that does not exist or another org's; 403 for an app-scoped token's writes
 * and for a caveat that denies.
 */
export function authorizeOrg(c: Context<ApiEnv>, org: string, access: Access): void {
  const p = principalOf(c);
  if (!c.get("orgs").exists(org) || !coversOrg(p, org))
    throw ApiError.of("not_found", `org ${org} not found`);
  if (p.apps !== undefined && access !== "read") {
    throw ApiError.of("permission_denied", `token is scoped to apps: it may not change org ${org}`);
  }
  checkCaveats(p, access, `org ${org}`, false);
}
