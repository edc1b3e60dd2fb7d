import { setTimeout as sleep } from "node:timers/promises";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { acquireLease, type Lease, type LeaseOptions, type LeaseValue } from "../src/mod.js";

// One bucket per test file run: the shared nats-server outlives it.
const bucket = `hangar-leases-test-${process.pid}`;
const connections: NatsConnection[] = [];
const leases: Lease[] = [];
let admin: NatsConnection;

beforeAll(async () => {
  admin = await connection();
});

afterAll(async () => {
  await Promise.all(leases.map((l) => l.release().catch(() => {})));
  await new Kvm(admin).create(bucket).then((kv) => kv.destroy());
  await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
});

async function connection(): Promise<NatsConnection> {
  const nc = await connect({ servers: inject("natsUrl") });
  connections.push(nc);
  return nc;
}

/** A contender on a connection of its own, with its transitions recorded. */
async function contender(name: string, holder: string, ttlMs: number, more: Partial<LeaseOptions> = {}) {
  const nc = await connection();
  const lost: string[] = [];
  let firstLoss: (reason: string) => void = () => {};
  const lostOnce = new Promise<string>((resolve) => (firstLoss = resolve));
  let acquired = 0;
  const lease = await acquireLease(nc, {
    bucket,
    name,
    holder,
    ttlMs,
    onAcquired: () => {
      acquired++;
      more.onAcquired?.();
    },
    onLost: (reason) => {
      lost.push(reason);
      firstLoss(reason);
    },
  });
  leases.push(lease);
  return { nc, lease, lost, lostOnce, acquired: () => acquired };
}

async function stored(name: string): Promise<{ value: LeaseValue | null; revision: number }> {
  const entry = await (await new Kvm(admin).open(bucket)).get(name);
  if (entry === null || entry.operation !== "PUT") return { value: null, revision: entry?.revision ?? 0 };
  return { value: entry.json<LeaseValue>(), revision: entry.revision };
}

/** Resolves once the key's revision moved `count` times past `from` (each renewal is one write). */
async function renewals(name: string, from: number, count: number): Promise<void> {
  const kv = await new Kvm(admin).open(bucket);
  const iter = await kv.watch({ key: name, include: "updates" });
  for await (const e of iter) {
    if (e.revision >= from + count) break;
  }
  iter.stop();
}

describe("a lease in NATS KV", () => {
  it("has one holder at a time: the standby never gets it while the holder renews", async () => {
    const a = await contender("one-holder", "a", 600);
    expect(a.lease.isHeld()).toBe(true);
    const b = await contender("one-holder", "b", 600);
    expect(b.lease.isHeld()).toBe(false);
    const { revision, value } = await stored("one-holder");
    expect(value?.holder).toBe("a");
    // Every renewal is a moment the standby could have won; it won none of them.
    await renewals("one-holder", revision, 4);
    expect(a.lease.isHeld()).toBe(true);
    expect(b.lease.isHeld()).toBe(false);
    expect(b.acquired()).toBe(0);
    expect(a.lost).toEqual([]);
    expect((await stored("one-holder")).value?.holder).toBe("a");
  });

  it("is taken over once a holder stops renewing (a killed process: no release)", async () => {
    const a = await contender("takeover", "a", 600);
    let aHeldWhenBGotIt: boolean | undefined;
    const b = await contender("takeover", "b", 600, {
      onAcquired: () => (aHeldWhenBGotIt = a.lease.isHeld()),
    });
    expect(b.lease.isHeld()).toBe(false);
    await a.nc.close();
    await b.lease.whenHeld();
    expect(aHeldWhenBGotIt).toBe(false);
    expect(a.lease.isHeld()).toBe(false);
    expect((await stored("takeover")).value?.holder).toBe("b");
  });

  it("a holder that stops renewing stops counting itself holding before its write expires for others", async () => {
    const ttlMs = 1_200;
    const a = await contender("margin", "a", ttlMs);
    expect(a.lease.isHeld()).toBe(true);
    // No more renewals reach NATS; the last one that did is what a standby goes by.
    await a.nc.close();
    const { value } = await stored("margin");
    expect(value?.holder).toBe("a");
    const expiresAt = value?.expires_at_ms ?? 0;
    // Just before a standby may take over, the old holder has already stopped (ttlMs / 6 earlier).
    await sleep(Math.max(0, expiresAt - 1 - Date.now()));
    expect(a.lease.isHeld()).toBe(false);
    expect(await a.lostOnce).toBe(`lease margin expired: no renewal within ${ttlMs - ttlMs / 6} ms`);
  });

  it("still reports the loss when its deadline timer fires before the wall clock reaches the deadline", async () => {
    // Node runs timers on the loop's cached monotonic time, which lags Date.now() on a busy loop, so a
    // deadline timer can fire a few ms early. Here the wall clock is made to lag by 50 ms on purpose.
    const ttlMs = 900;
    const a = await contender("early-timer", "a", ttlMs);
    expect(a.lease.isHeld()).toBe(true);
    await a.nc.close();
    const realNow = Date.now.bind(Date);
    const lagging = vi.spyOn(Date, "now").mockImplementation(() => realNow() - 50);
    try {
      expect(await a.lostOnce).toBe(`lease early-timer expired: no renewal within ${ttlMs - ttlMs / 6} ms`);
      expect(a.lease.isHeld()).toBe(false);
    } finally {
      lagging.mockRestore();
    }
  });

  it("hands over at once on release, long before the released write would expire", async () => {
    const ttlMs = 120_000;
    const a = await contender("handover", "a", ttlMs);
    const b = await contender("handover", "b", ttlMs);
    expect(b.lease.isHeld()).toBe(false);
    const written = (await stored("handover")).value;
    await a.lease.release();
    expect(a.lease.isHeld()).toBe(false);
    // The standby's own retry comes only every ttl/3 (40 s): within this test's timeout it can only
    // be the watch on the key that saw the release.
    await b.lease.whenHeld();
    expect(written?.expires_at_ms).toBeGreaterThan(Date.now());
    expect((await stored("handover")).value?.holder).toBe("b");
    expect(a.lost).toEqual([]);
  }, 20_000);

  it("calls onLost when a renewal finds another holder, and its release leaves that holder alone", async () => {
    const a = await contender("intruded", "a", 600);
    const kv = await new Kvm(admin).open(bucket);
    const intruder: LeaseValue = { holder: "intruder", expires_at_ms: Date.now() + 60_000 };
    await kv.put("intruded", JSON.stringify(intruder));
    expect(await a.lostOnce).toBe("lease intruded is held by intruder");
    expect(a.lost).toEqual(["lease intruded is held by intruder"]);
    expect(a.lease.isHeld()).toBe(false);
    await a.lease.release();
    expect((await stored("intruded")).value).toEqual(intruder);
  });

  it("refuses a ttl that is not positive and an empty holder", async () => {
    await expect(acquireLease(admin, { bucket, name: "bad", holder: "a", ttlMs: 0 })).rejects.toThrow(
      /ttlMs/,
    );
    await expect(acquireLease(admin, { bucket, name: "bad", holder: "", ttlMs: 1000 })).rejects.toThrow(
      /holder/,
    );
  });
});
