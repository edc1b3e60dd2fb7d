import { AppNameSchema, validate } from "@hangar/config";
import type { Logger } from "@hangar/telemetry";
import type { Context, MiddlewareHandler } from "hono";
import { limitOf, type RateAction, READ_ACTIONS, rateLimitedCall } from "../limits/actions.js";
import type { RateDecision } from "../limits/kv-rate-limiter.js";
import type { Limit } from "../limits/token-bucket.js";
import { type Access, authorizeApp, authorizeOrg } from "./authz.js";
import type { ApiEnv } from "./context.js";
import { ApiError } from "./errors.js";

/** Decides calls against shared token buckets (KvRateLimiter). */
export interface RateLimiter {
  decide(org: string, action: RateAction, limit: Limit): Promise<RateDecision>;
}

/** The platform's limits: calls of each action per `periodMs`, unless an org sets its own. */
export interface RateLimitSettings {
  limiter: RateLimiter;
  limits: Readonly<Record<RateAction, number>>;
  periodMs: number;
  logger: Logger;
}

const ACCESS: Record<RateAction, Access> = {
  machine_create: "write",
  machine_start: "write",
  machine_get: "read",
  app_create: "write",
  volume: "write",
  postgres: "write",
};

/**
 * Rate-limits the calls of RATE_LIMITED_ROUTES per org and action, after the token middleware.
 * The org is the app's (authorized here, so a call another org's token cannot make never spends
 * anyone's budget), for a new app the one its body names, and for a new org the calling token's own
 * (the operator's is not charged). Over budget: 429 `rate_limited` with
 * Retry-After in whole seconds. Only a 2xx answer is charged. When the store cannot be read,
 * mutations are refused with 503 (failing closed) and reads go through (failing open), logged.
 */
export function rateLimit(s: RateLimitSettings): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const call = rateLimitedCall(c.req.method, c.req.path);
    // A name that is no app name is the route's 400 to give (and costs nothing).
    if (call === undefined || (call.app !== undefined && !validate(AppNameSchema, call.app).ok))
      return next();
    let org: string;
    if (call.app !== undefined) org = authorizeApp(c, call.app, ACCESS[call.action]).org;
    else if (call.payer === "token") {
      const own = c.get("principal").org;
      // The operator's token has no org: it is the platform's, and nothing limits it.
      if (own === undefined) return next();
      org = own;
    } else org = await orgOfNewApp(c);
    const limit = limitOf(call.action, s.limits, c.get("orgs").limitsOf(org), s.periodMs);
    let decision: RateDecision;
    try {
      decision = await s.limiter.decide(org, call.action, limit);
    } catch (err) {
      if (READ_ACTIONS.has(call.action)) {
        s.logger.warn({ err, org, action: call.action }, "rate limits unreadable: letting a read through");
        return next();
      }
      throw ApiError.of("unavailable", "rate limits cannot be checked right now; try again", { cause: err });
    }
    if (!decision.ok) {
      const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
      c.header("retry-after", String(seconds));
      throw ApiError.of(
        "rate_limited",
        `rate limit exceeded: org ${org} may make ${limit.count} ${call.action} calls per ${limit.periodMs / 1000}s; retry after ${seconds}s`,
      );
    }
    await next();
    if (c.res.status < 200 || c.res.status >= 300) {
      decision.ticket.release();
      return;
    }
    // The call is done: a charge that fails costs the org nothing rather than failing the call.
    await decision.ticket.charge().catch((err: unknown) => {
      s.logger.warn({ err, org, action: call.action }, "could not charge a call to its rate limit");
    });
  };
}

/**
 * The org a new app goes to: the body's org_slug, else the token's org, else "personal" (as app
 * creation defaults it), authorized for writes. A body that is not JSON gets the route's 400, which
 * is not charged.
 */
async function orgOfNewApp(c: Context<ApiEnv>): Promise<string> {
  let slug: unknown;
  try {
    slug = (JSON.parse(await c.req.text()) as { org_slug?: unknown } | null)?.org_slug;
  } catch {
    slug = undefined;
  }
  const org = typeof slug === "string" && slug !== "" ? slug : (c.get("principal").org ?? "personal");
  authorizeOrg(c, org, "write");
  return org;
}
