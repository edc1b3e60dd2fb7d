import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { KvRateLimiter, type RateDecision } from "../src/limits/kv-rate-limiter.js";
import { tokensAt } from "../src/limits/token-bucket.js";
import { KvBlobUsage } from "../src/registry/quota.js";

// One bucket per test file run: the shared nats-server outlives it.
const bucket = `hangar-rate-limits-test-${process.pid}`;
let a: NatsConnection;
let b: NatsConnection;

beforeAll(async () => {
  a = await connect({ servers: inject("natsUrl") });
  b = await connect({ servers: inject("natsUrl") });
});

afterAll(async () => {
  await new Kvm(a).create(bucket).then((kv) => kv.destroy());
  await Promise.all([a.close(), b.close()]);
});

function admitted(d: RateDecision) {
  if (!d.ok) throw new Error(`refused, retry after ${d.retryAfterMs} ms`);
  return d.ticket;
}

describe("token buckets in NATS KV", () => {
  it("two replicas spend one budget: what one charged, the other refuses", async () => {
    const [one, two] = await Promise.all([
      KvRateLimiter.open(a, { bucket }),
      KvRateLimiter.open(b, { bucket }),
    ]);
    const limit = { count: 2, periodMs: 60_000 };
    await admitted(await one.decide("org-x", "machine_create", limit)).charge();
    await admitted(await two.decide("org-x", "machine_create", limit)).charge();
    const refused = await one.decide("org-x", "machine_create", limit);
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.retryAfterMs).toBeGreaterThan(25_000);
    expect((await two.decide("org-x", "machine_create", limit)).ok).toBe(false);
    // Another org, and another action of the same org, have budgets of their own.
    expect((await two.decide("org-y", "machine_create", limit)).ok).toBe(true);
    expect((await two.decide("org-x", "machine_start", limit)).ok).toBe(true);
  });

  it("a released call costs nothing, and admitted calls not yet charged hold their place", async () => {
    const limiter = await KvRateLimiter.open(a, { bucket });
    const limit = { count: 1, periodMs: 60_000 };
    const first = admitted(await limiter.decide("org-r", "app_create", limit));
    expect((await limiter.decide("org-r", "app_create", limit)).ok).toBe(false);
    first.release();
    admitted(await limiter.decide("org-r", "app_create", limit)).release();
    const kv = await new Kvm(a).open(bucket);
    expect(await kv.get("org-r.app_create")).toBeNull();
  });

  it("concurrent charges from both replicas all land (compare-and-set retries on the fresh value)", async () => {
    const [one, two] = await Promise.all([
      KvRateLimiter.open(a, { bucket }),
      KvRateLimiter.open(b, { bucket }),
    ]);
    const limit = { count: 1000, periodMs: 3_600_000_000 }; // no refill to speak of during the test
    const charges = Array.from({ length: 20 }, async (_, i) => {
      const ticket = admitted(await (i % 2 ? one : two).decide("org-c", "machine_get", limit));
      await ticket.charge();
    });
    await Promise.all(charges);
    const kv = await new Kvm(a).open(bucket);
    const entry = await kv.get("org-c.machine_get");
    const state = JSON.parse(entry?.string() ?? "null");
    expect(Math.round(tokensAt(state, limit, Date.now()))).toBe(980);
  });

  it("an org slug a KV key cannot hold gets a bucket of its own", async () => {
    const limiter = await KvRateLimiter.open(a, { bucket });
    const limit = { count: 1, periodMs: 60_000 };
    await admitted(await limiter.decide("a.b", "volume", limit)).charge();
    expect((await limiter.decide("a.b", "volume", limit)).ok).toBe(false);
    expect((await limiter.decide("a-b", "volume", limit)).ok).toBe(true);
  });

  it("a free-text org and the slug of its former key encoding have buckets of their own", async () => {
    const limiter = await KvRateLimiter.open(a, { bucket });
    const limit = { count: 1, periodMs: 60_000 };
    // "my org" was keyed `x6d79206f7267`, a slug anyone can create: they shared one budget.
    for (const org of ["my org", "My_Org"]) {
      await admitted(await limiter.decide(org, "volume", limit)).charge();
      expect((await limiter.decide(org, "volume", limit)).ok).toBe(false);
    }
    expect((await limiter.decide("x6d79206f7267", "volume", limit)).ok).toBe(true);
    expect((await limiter.decide(`_${Buffer.from("my org").toString("hex")}`, "volume", limit)).ok).toBe(
      true,
    );
  });
});

describe("stored blob bytes per org in NATS KV", () => {
  it("adds concurrent uploads of two replicas without losing any", async () => {
    const usageBucket = `${bucket}-usage`;
    const [one, two] = await Promise.all([
      KvBlobUsage.open(a, { bucket: usageBucket }),
      KvBlobUsage.open(b, { bucket: usageBucket }),
    ]);
    await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? one : two).add("org-q", 100)));
    expect(await one.usedBy("org-q")).toBe(1000);
    expect(await two.usedBy("org-other")).toBe(0);
    // A free-text org's usage is not a slug's: "my org" and `x6d79206f7267` shared one counter.
    await one.add("my org", 5);
    expect(await two.usedBy("my org")).toBe(5);
    expect(await two.usedBy("x6d79206f7267")).toBe(0);
    await new Kvm(a).open(usageBucket).then((kv) => kv.destroy());
  });
});
