// Issue 13 review, gateway auth and limits hardening: token expiries are bounded (20 years) and
// refused before anything is recorded; an org's limits are the operator's to set, and creating orgs
// spends the creating org's app_create budget.
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";
import { lastSequences, settledSequences } from "../platform/stream-sequences.js";

let p: TestPlatform;
let nc: NatsConnection;
/** The admin token of org `hx`, created by the operator. */
let admin: string;

beforeAll(async () => {
  p = await startTestPlatform();
  nc = await p.connectNats();
  ({ token: admin } = await p.api.ok<{ token: string }>("POST", "/orgs", { slug: "hx" }));
}, 180_000);

afterAll(async () => {
  await nc?.close();
  await p?.close();
});

describe("token expiry", () => {
  it("past 20 years is a 400 that records nothing, and the org's tokens still list", async () => {
    const before = await settledSequences(nc);
    // 2.5e9h once recorded TokenIssued and then 500ed rendering it, and the org's listing 500ed for
    // good; 99999999999h failed to mint after recording.
    for (const expiry of ["2500000000h", "99999999999h", "175201h"]) {
      const res = await p.api.call("POST", "/tokens", { kind: "readonly", expiry }, { token: admin });
      expect(res.status, expiry).toBe(400);
      expect(res.body).toMatchObject({ status: "invalid_argument" });
    }
    expect(await lastSequences(nc)).toEqual(before);
    const ok = await p.api.call<{ expires_at: string }>(
      "POST",
      "/tokens",
      { kind: "readonly", expiry: "175200h" },
      { token: admin },
    );
    expect(ok.status).toBe(201);
    expect(Date.parse(ok.body.expires_at)).toBeGreaterThan(Date.now() + 19 * 365 * 24 * 3_600_000);
    expect((await p.api.call("GET", "/tokens?org=hx", undefined, { token: admin })).status).toBe(200);
    expect((await p.api.call("GET", "/tokens")).status).toBe(200);
  });
});

describe("tenants cannot escape their limits", () => {
  it("an org admin may not set its org's limits (403), nor another org's (404); the operator may", async () => {
    const body = { limits: { machine_create: 1_000_000 } };
    const own = await p.api.call("PUT", "/orgs/hx/limits", body, { token: admin });
    expect(own.status).toBe(403);
    expect(own.body).toMatchObject({ status: "permission_denied" });
    expect((await p.api.call("PUT", "/orgs/personal/limits", body, { token: admin })).status).toBe(404);
    const byOperator = await p.api.call<{ limits: Record<string, number> }>("PUT", "/orgs/hx/limits", body);
    expect(byOperator.status).toBe(200);
    expect(byOperator.body.limits.machine_create).toBe(1_000_000);
  });

  it("creating orgs spends the creator's app_create budget; the operator's are free", async () => {
    const { token } = await p.api.ok<{ token: string }>("POST", "/orgs", { slug: "maker" });
    // The test platform raises every limit: the operator lowers this org's own.
    await p.api.ok("PUT", "/orgs/maker/limits", { limits: { app_create: 3 } });
    for (let i = 0; i < 3; i++) {
      expect((await p.api.call("POST", "/orgs", { slug: `maker-${i}` }, { token })).status).toBe(201);
    }
    const over = await p.api.call("POST", "/orgs", { slug: "maker-3" }, { token });
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ status: "rate_limited" });
    expect((await p.api.call("GET", "/orgs/maker-3")).status).toBe(404);
    for (let i = 0; i < 6; i++)
      expect((await p.api.call("POST", "/orgs", { slug: `op-${i}` })).status).toBe(201);
  });
});
