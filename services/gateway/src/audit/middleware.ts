import type { AuditEntry } from "@hangar/domain";
import type { Logger } from "@hangar/telemetry";
import type { Context, MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { ApiEnv } from "../http/context.js";
import { AUDITED_ROUTES, type AuditSource, fieldOf, MUTATING_METHODS, registryCall } from "./actions.js";
import type { AuditLog } from "./trail.js";

const APP_ROUTE = "/v1/apps/:app_name";

/**
 * The app and its org named by the route a request is about to reach (its last matched route), read
 * before the handler runs: a deleted app is gone from the org directory afterwards.
 */
function appBeforeCall(c: Context<ApiEnv>): { app: string; org: string | undefined } | undefined {
  const pattern = routePath(c, -1);
  if (pattern !== APP_ROUTE && !pattern.startsWith(`${APP_ROUTE}/`)) return undefined;
  const app = c.req.path.split("/")[3] ?? "";
  // An app name never holds an escape; one that does names no app.
  if (app === "" || app.includes("%")) return undefined;
  return { app, org: c.get("orgs")?.orgOf(app) };
}

/** The action, target, org and app of a call that succeeded; undefined for a call that is not audited. */
async function describeCall(
  c: Context<ApiEnv>,
  before: { app: string; org: string | undefined } | undefined,
): Promise<Pick<AuditEntry, "action" | "target" | "org" | "app"> | undefined> {
  // Hono answers HEAD with the GET handler: a HEAD is described (and audited) as that GET.
  const method = c.req.method === "HEAD" ? "GET" : c.req.method;
  // Read after the handler ran: the route (and its params) are the handler's, not this middleware's.
  const pattern = routePath(c);
  const orgOfApp = (app: string) =>
    (app === before?.app ? before.org : undefined) ??
    c.get("orgs")?.orgOf(app) ??
    c.get("principal")?.org ??
    "";
  if (pattern === "/v2/*") {
    const push = registryCall(method, c.req.path);
    return push && { action: push.action, target: push.target, app: push.app, org: orgOfApp(push.app) };
  }
  const route = AUDITED_ROUTES[`${method} ${pattern}`];
  if (!route) {
    // A mutating route missing from the table (audit/actions.test.ts stops that) is still recorded.
    if (!MUTATING_METHODS.has(method)) return undefined;
    return {
      action: "api.call",
      target: `${method} ${pattern}`,
      org: c.get("principal")?.org ?? "",
      app: "",
    };
  }
  let json: unknown;
  const read = async (s: AuditSource): Promise<string> => {
    if ("param" in s) return c.req.param(s.param) ?? "";
    json ??= await c.res
      .clone()
      .json()
      .catch(() => null);
    return fieldOf(json, s.response);
  };
  const app = route.app ? await read(route.app) : (c.req.param("app_name") ?? "");
  const org = route.org ? await read(route.org) : app ? orgOfApp(app) : (c.get("principal")?.org ?? "");
  return { action: route.action, target: await read(route.target), org, app };
}

/**
 * Records every successful (2xx) mutating call, and every tunnel or console opened, as one AUDIT
 * event, before the answer is sent: the token id, the action and its target. A refused or failed call
 * records nothing. An append that fails is logged; the call itself has already happened.
 */
export function auditCalls(log: AuditLog, logger: Logger): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const before = appBeforeCall(c);
    await next();
    if (c.res.status < 200 || c.res.status > 299 || c.error) return;
    const call = await describeCall(c, before);
    if (!call) return;
    const principal = c.get("principal");
    const entry: AuditEntry = {
      ...call,
      tokenId: principal?.tokenId ?? "",
      tokenKind: principal?.kind ?? "",
      requestId: c.get("requestId") ?? "",
      atMs: Date.now(),
      status: c.res.status,
      method: c.req.method,
      path: c.req.path,
    };
    await log
      .record(entry)
      .catch((err: unknown) => logger.error({ err, audit: entry }, "audit append failed"));
  };
}
