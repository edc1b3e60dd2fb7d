// Issue 13 review, gateway auth and limits hardening: token expiries are bounded (20 years) and
// refused before anything is recorded.
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";

let p: TestPlatform;
let nc: NatsConnection;
/** The admin token of org `hx`, created by the operator. */
let admin: string;

/** Every stream's last sequence, by stream name. */
async function lastSequences(): Promise<Record<string, number>> {
  const jsm = await jetstreamManager(nc);
  const out: Record<string, number> = {};
  for await (const info of jsm.streams.list()) out[info.config.name] = info.state.last_seq;
  return out;
}

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
    const before = await lastSequences();
    // 2.5e9h once recorded TokenIssued and then 500ed rendering it, and the org's listing 500ed for
    // good; 99999999999h failed to mint after recording.
    for (const expiry of ["2500000000h", "99999999999h", "175201h"]) {
      const res = await p.api.call("POST", "/tokens", { kind: "readonly", expiry }, { token: admin });
      expect(res.status, expiry).toBe(400);
      expect(res.body).toMatchObject({ status: "invalid_argument" });
    }
    expect(await lastSequences()).toEqual(before);
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
