import { randomBytes } from "node:crypto";
import { type AuditEntry, auditStream } from "@hangar/domain";
import { EventStore, ensureStream, prefixedStream } from "@hangar/eventstore";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AuditTrail } from "../src/audit/trail.js";

// The nats-server is shared with other test files: this file's stream has its own prefix.
const stream = prefixedStream(auditStream, `audit${randomBytes(4).toString("hex")}`);
let nc: NatsConnection;
let store: EventStore;
let calls = 0;

const entry = (org: string, app: string, action: string, target: string): AuditEntry => ({
  tokenId: `tok-${org}`,
  tokenKind: "org",
  action,
  target,
  org,
  app,
  requestId: `req-${++calls}`,
  atMs: Date.now(),
  status: 200,
  method: "POST",
  path: `/v1/apps/${app}/machines`,
});

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, stream);
});

afterAll(async () => {
  store?.close();
  await nc?.drain();
});

describe("AuditTrail", () => {
  it("reads back what any replica recorded, newest first, by org, app and token's apps, a page at a time", async () => {
    const one = await AuditTrail.start(store, { stream });
    await one.record(entry("acme", "web", "machine.create", "m1"));
    await one.record(entry("acme", "api", "machine.start", "m2"));
    await one.record(entry("acme", "", "token.create", "tok-9"));
    await one.record(entry("zeta", "shop", "app.delete", "shop"));
    // A second gateway replica, started after: its history holds the first one's appends.
    const two = await AuditTrail.start(store, { stream });
    await two.record(entry("acme", "web", "machine.stop", "m1"));

    const acme = await two.query({ org: "acme", limit: 10 });
    expect(acme.map((r) => r.action)).toEqual([
      "machine.stop",
      "token.create",
      "machine.start",
      "machine.create",
    ]);
    expect(acme.every((r) => r.org === "acme" && r.tokenId === "tok-acme")).toBe(true);
    // The first replica sees the second's append (it follows the stream).
    await expect
      .poll(async () => (await one.query({ org: "acme", limit: 1 }))[0]?.action)
      .toBe("machine.stop");

    expect((await one.query({ org: "acme", app: "web", limit: 10 })).map((r) => r.target)).toEqual([
      "m1",
      "m1",
    ]);
    const scoped = await one.query({ org: "acme", apps: new Set(["api"]), limit: 10 });
    expect(scoped.map((r) => r.action)).toEqual(["machine.start"]);
    expect((await one.query({ org: "zeta", limit: 10 })).map((r) => r.action)).toEqual(["app.delete"]);
    expect((await one.query({ org: "nobody", limit: 10 })).length).toBe(0);

    // Every org, newest first, in pages.
    const all = await two.query({ limit: 2 });
    expect(all.map((r) => r.action)).toEqual(["machine.stop", "app.delete"]);
    const next = await two.query({ limit: 10, before: all.at(-1)?.seq ?? 0 });
    expect(next.map((r) => r.action)).toEqual(["token.create", "machine.start", "machine.create"]);
    await Promise.all([one.stop(), two.stop()]);
  });

  it("keeps an org's newest entries in memory within its budget", async () => {
    const trail = await AuditTrail.start(store, { stream, keptPerOrg: 4 });
    for (let i = 0; i < 10; i++) await trail.record(entry("busy", "web", "machine.start", `m${i}`));
    const kept = await trail.query({ org: "busy", limit: 100 });
    expect(kept.length).toBeGreaterThanOrEqual(4);
    expect(kept.length).toBeLessThan(6);
    expect(kept[0]?.target).toBe("m9");
    await trail.stop();
  });

  it("reads back only the platform's newest calls at start", async () => {
    const writer = await AuditTrail.start(store, { stream });
    for (let i = 0; i < 5; i++) await writer.record(entry("tail", "web", "machine.start", `t${i}`));
    const reader = await AuditTrail.start(store, { stream, readAtStart: 3 });
    expect((await reader.query({ org: "tail", limit: 10 })).map((r) => r.target)).toEqual(["t4", "t3", "t2"]);
    // What comes after the start is followed as ever.
    await writer.record(entry("tail", "web", "machine.stop", "t5"));
    await expect.poll(async () => (await reader.query({ org: "tail", limit: 1 }))[0]?.target).toBe("t5");
    await Promise.all([writer.stop(), reader.stop()]);
  });

  it("refuses to record a call that did not succeed, and stores nothing", async () => {
    const trail = await AuditTrail.start(store, { stream });
    const before = (await store.jsm.streams.info(stream.name)).state.last_seq;
    await expect(
      trail.record({ ...entry("acme", "web", "machine.start", "m1"), status: 403 }),
    ).rejects.toThrow(/only successful calls/);
    expect((await store.jsm.streams.info(stream.name)).state.last_seq).toBe(before);
    await trail.stop();
  });
});
