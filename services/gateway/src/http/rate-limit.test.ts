import type { Principal } from "@hangar/auth";
import { createLogger } from "@hangar/telemetry";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { RateAction } from "../limits/actions.js";
import { DEFAULT_RATE_LIMITS } from "../limits/actions.js";
import type { RateDecision } from "../limits/kv-rate-limiter.js";
import type { Limit } from "../limits/token-bucket.js";
import type { ApiEnv } from "./context.js";
import { errorHandler } from "./error-handler.js";
import { type RateLimiter, rateLimit } from "./rate-limit.js";

const ORG_OF: Record<string, string> = { web: "acme", api: "acme", shop: "other" };

/** Decides from a fixed budget per (org, action) and records what it was asked and charged. */
class CountingLimiter implements RateLimiter {
  readonly asked: Array<{ org: string; action: RateAction; limit: Limit }> = [];
  readonly charged: string[] = [];
  constructor(private left: number) {}

  async decide(org: string, action: RateAction, limit: Limit): Promise<RateDecision> {
    this.asked.push({ org, action, limit });
    if (this.left <= 0) return { ok: false, retryAfterMs: 1500 };
    this.left--;
    return {
      ok: true,
      ticket: {
        charge: async () => void this.charged.push(`${org}.${action}`),
        release: () => {
          this.left++;
        },
      },
    };
  }
}

function app(limiter: RateLimiter, principal: Partial<Principal> = {}): Hono<ApiEnv> {
  const a = new Hono<ApiEnv>();
  a.onError(errorHandler(createLogger("rate-limit-test", { level: "silent" })));
  a.use("/v1/*", async (c, next) => {
    c.set("principal", {
      tokenId: "tok",
      kind: "org",
      org: "acme",
      apps: undefined,
      readOnly: false,
      execOnly: false,
      expiresAt: undefined,
      ...principal,
    });
    c.set("orgs", {
      orgOf: (name) => ORG_OF[name],
      exists: (org) => org === "acme" || org === "other",
      limitsOf: (org) => (org === "acme" ? { machine_create: 3 } : {}),
    });
    await next();
  });
  a.use(
    "/v1/*",
    rateLimit({
      limiter,
      limits: DEFAULT_RATE_LIMITS,
      periodMs: 60_000,
      logger: createLogger("rate-limit-test", { level: "silent" }),
    }),
  );
  a.post("/v1/apps/:app_name/machines", (c) =>
    c.req.query("fail") ? c.json({ error: "bad", status: "invalid_argument" }, 400) : c.json({ id: "m1" }),
  );
  a.post("/v1/apps", (c) => c.json({}, 201));
  a.post("/v1/orgs", (c) => c.json({}, 201));
  return a;
}

const create = (a: Hono<ApiEnv>, name: string, query = "") =>
  a.request(`/v1/apps/${name}/machines${query}`, { method: "POST", body: "{}" });

describe("rate-limit middleware", () => {
  it("charges a 2xx call to its app's org with the org's own limit", async () => {
    const limiter = new CountingLimiter(5);
    expect((await create(app(limiter), "web")).status).toBe(200);
    expect(limiter.asked).toEqual([
      { org: "acme", action: "machine_create", limit: { count: 3, periodMs: 60_000 } },
    ]);
    expect(limiter.charged).toEqual(["acme.machine_create"]);
  });

  it("over budget: 429 rate_limited with Retry-After in whole seconds, rounded up", async () => {
    const res = await create(app(new CountingLimiter(0)), "web");
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("2");
    expect(await res.json()).toEqual({
      error: expect.stringMatching(/^rate limit exceeded: org acme/),
      status: "rate_limited",
    });
  });

  it("a refused call is not charged", async () => {
    const limiter = new CountingLimiter(1);
    expect((await create(app(limiter), "web", "?fail=1")).status).toBe(400);
    expect(limiter.charged).toEqual([]);
    expect((await create(app(limiter), "web")).status).toBe(200);
  });

  it("another org's app is a 404 that asks no budget, and a bad name is left to the route", async () => {
    const limiter = new CountingLimiter(5);
    expect((await create(app(limiter), "shop")).status).toBe(404);
    expect((await create(app(limiter), "Not_An_App")).status).toBe(200);
    expect(limiter.asked).toEqual([]);
  });

  it("a new app spends the budget of the org its body names", async () => {
    const limiter = new CountingLimiter(5);
    const a = app(limiter, { org: undefined, kind: "operator" });
    const res = await a.request("/v1/apps", {
      method: "POST",
      body: JSON.stringify({ app_name: "x", org_slug: "other" }),
    });
    expect(res.status).toBe(201);
    expect(limiter.charged).toEqual(["other.app_create"]);
  });

  it("a new org spends the creating token's org's app_create budget; the operator's is not charged", async () => {
    const limiter = new CountingLimiter(1);
    const newOrg = (a: Hono<ApiEnv>) => a.request("/v1/orgs", { method: "POST", body: '{"slug":"fresh"}' });
    expect((await newOrg(app(limiter))).status).toBe(201);
    expect(limiter.charged).toEqual(["acme.app_create"]);
    // Unlimited, a tenant could mint orgs, each with a fresh budget and blob quota.
    const over = await newOrg(app(limiter));
    expect(over.status).toBe(429);
    expect(await over.json()).toMatchObject({ status: "rate_limited" });
    const asked = limiter.asked.length;
    expect((await newOrg(app(limiter, { org: undefined, kind: "operator" }))).status).toBe(201);
    expect(limiter.asked.length).toBe(asked);
  });

  it("an unreadable store refuses mutations with 503 and lets reads through", async () => {
    const broken: RateLimiter = {
      decide: async () => {
        throw new Error("no responders");
      },
    };
    expect((await create(app(broken), "web")).status).toBe(503);
    const a = app(broken);
    a.get("/v1/apps/:app_name/machines", (c) => c.json([]));
    expect((await a.request("/v1/apps/web/machines")).status).toBe(200);
  });
});
