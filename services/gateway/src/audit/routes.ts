import { Hono } from "hono";
import { authorizeApp, authorizeOrg, principalOf } from "../http/authz.js";
import type { ApiEnv } from "../http/context.js";
import { ApiError } from "../http/errors.js";
import { invalid, quoted } from "../http/query.js";
import type { AuditLog, AuditQuery, AuditRecord } from "./trail.js";

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/** A positive whole number query parameter up to `max`, or undefined when absent. */
function wholeNumber(value: string | undefined, name: string, max: number): number | undefined {
  if (value === undefined || value === "") return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > max)
    throw invalid(name, `expected a whole number from 1 to ${max}, received ${quoted(value)}`);
  return n;
}

/** One entry as the API shows it (snake_case, time in RFC 3339). */
function recordView(r: AuditRecord) {
  return {
    seq: r.seq,
    time: new Date(r.atMs).toISOString(),
    token_id: r.tokenId,
    token_kind: r.tokenKind,
    action: r.action,
    target: r.target,
    org: r.org,
    app: r.app,
    status: r.status,
    method: r.method,
    path: r.path,
    request_id: r.requestId,
  };
}

/**
 * `GET /audit?app=&org=&limit=&before=` (Hangar's own): the audit trail, newest first. With `app`,
 * that app's calls (read access to the app); with `org`, the org's (read access to the org); with
 * neither, the token's org, or every org for an operator token. An app-scoped token sees only its
 * apps' entries. `next_before` pages back to older entries.
 */
export function auditRoutes(log: AuditLog): Hono<ApiEnv> {
  return new Hono<ApiEnv>().get("/audit", async (c) => {
    const limit = wholeNumber(c.req.query("limit"), "limit", MAX_LIMIT) ?? DEFAULT_LIMIT;
    const before = wholeNumber(c.req.query("before"), "before", Number.MAX_SAFE_INTEGER);
    const app = c.req.query("app") || undefined;
    const principal = principalOf(c);
    let org = c.req.query("org") || principal.org;
    if (app !== undefined) {
      const appOrg = authorizeApp(c, app, "read").org;
      // An app named with another org answers as an app that is not there.
      if (org !== undefined && org !== appOrg)
        throw ApiError.of("not_found", `app ${app} not found in org ${org}`);
      org = appOrg;
    } else if (org !== undefined) {
      authorizeOrg(c, org, "read");
    }
    const q: AuditQuery = {
      limit,
      ...(org !== undefined ? { org } : {}),
      ...(app !== undefined ? { app } : {}),
    };
    if (before !== undefined) q.before = before;
    if (principal.apps !== undefined) q.apps = principal.apps;
    const records = await log.query(q);
    const last = records.at(-1);
    return c.json({
      events: records.map(recordView),
      next_before: records.length === limit && last ? last.seq : null,
    });
  });
}
