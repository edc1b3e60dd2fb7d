import { describe, expect, it } from "vitest";
import { createApi } from "../http/api.js";
import {
  DEFAULT_RATE_LIMITS,
  limitOf,
  parseRateLimits,
  RATE_LIMITED_ROUTES,
  rateLimitedCall,
} from "./actions.js";

describe("rate-limited routes", () => {
  it("every pattern of the table is a route of the API", () => {
    // With orgs, volumes and postgres (with the secrets it needs), so that their routes are mounted.
    const api = createApi({
      backend: {} as never,
      auth: {} as never,
      orgs: {} as never,
      volumes: {} as never,
      secrets: {} as never,
      postgres: {} as never,
    });
    const routes = new Set(api.routes.map((r) => `${r.method} ${r.path}`));
    for (const { method, path } of RATE_LIMITED_ROUTES) expect(routes).toContain(`${method} ${path}`);
  });

  it("matches a request to its action and app", () => {
    expect(rateLimitedCall("POST", "/v1/apps/web/machines")).toEqual({
      action: "machine_create",
      app: "web",
    });
    expect(rateLimitedCall("DELETE", "/v1/apps/web/machines/m1")).toEqual({
      action: "machine_create",
      app: "web",
    });
    expect(rateLimitedCall("POST", "/v1/apps/web/machines/m1/stop")).toEqual({
      action: "machine_start",
      app: "web",
    });
    expect(rateLimitedCall("GET", "/v1/apps/web/machines/m1")).toEqual({ action: "machine_get", app: "web" });
    // Hono answers HEAD with the GET handler: a HEAD spends the GET's budget.
    expect(rateLimitedCall("HEAD", "/v1/apps/web/machines")).toEqual({ action: "machine_get", app: "web" });
    expect(rateLimitedCall("HEAD", "/v1/apps/web/machines/m1")).toEqual({
      action: "machine_get",
      app: "web",
    });
    expect(rateLimitedCall("POST", "/v1/apps")).toEqual({ action: "app_create", app: undefined });
    expect(rateLimitedCall("POST", "/v1/orgs")).toEqual({
      action: "app_create",
      app: undefined,
      payer: "token",
    });
    expect(rateLimitedCall("POST", "/v1/apps/web/machines/m1")).toBeUndefined(); // update
    // A cluster's changes are charged to its app's org; a new one to the org its body names.
    expect(rateLimitedCall("POST", "/v1/postgres/db/failover")).toEqual({ action: "postgres", app: "db" });
    expect(rateLimitedCall("POST", "/v1/postgres")).toEqual({ action: "postgres", app: undefined });
    expect(rateLimitedCall("GET", "/v1/postgres/db")).toBeUndefined();
    expect(rateLimitedCall("GET", "/v1/apps/web/machines/m1/events")).toBeUndefined();
    expect(rateLimitedCall("POST", "/v1/apps/%E0%A4%A/machines")?.app).toBe("%E0%A4%A");
  });
});

describe("rate-limit settings", () => {
  it("overrides the defaults it names", () => {
    expect(parseRateLimits("")).toEqual(DEFAULT_RATE_LIMITS);
    expect(parseRateLimits(" machine_create=600, machine_get=5000 ")).toEqual({
      ...DEFAULT_RATE_LIMITS,
      machine_create: 600,
      machine_get: 5000,
    });
  });

  it("refuses unknown actions and counts that are not whole and positive", () => {
    expect(() => parseRateLimits("machine_destroy=5")).toThrow(/unknown rate-limit action "machine_destroy"/);
    for (const bad of ["machine_create=0", "machine_create=1.5", "machine_create", "machine_create=2=3"]) {
      expect(() => parseRateLimits(bad)).toThrow(RangeError);
    }
  });

  it("an org's own limit wins over the platform's", () => {
    expect(limitOf("machine_create", DEFAULT_RATE_LIMITS, { machine_create: 2 }, 1000)).toEqual({
      count: 2,
      periodMs: 1000,
    });
    expect(limitOf("machine_get", DEFAULT_RATE_LIMITS, { machine_create: 2 }, 1000).count).toBe(120);
  });
});
