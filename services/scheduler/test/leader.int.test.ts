// The scheduler under its lease, on a real nats-server: of two replicas one acts and the other stands by
// (healthy, idle); a clean stop hands over at once; a holder whose lease is taken from it stops acting.
import { setTimeout as sleep } from "node:timers/promises";
import { EventStore } from "@hangar/eventstore";
import { LEASES_BUCKET } from "@hangar/lease";
import { createLogger } from "@hangar/telemetry";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type LeaderOptions,
  type LeasedScheduler,
  runSchedulerUnderLease,
  SCHEDULER_LEASE,
  startScheduler,
} from "../src/mod.js";
import { Platform, serviceConfig, waitFor } from "./harness.js";

const logger = createLogger("scheduler-leader-test", { level: process.env.SCHED_LOG ?? "silent" });
let platform: Platform;
const running: (() => Promise<void>)[] = [];

/** A leased scheduler on a connection of its own, as a separate replica would have. */
async function replica(holder: string, opts: Partial<LeaderOptions> = {}): Promise<LeasedScheduler> {
  const nc = await connect({ servers: platform.server.url });
  const s = await runSchedulerUnderLease({
    nc,
    logger,
    holder,
    leaseTtlMs: 900,
    passIntervalMs: 200,
    warmupMs: 0,
    ...opts,
  });
  running.push(async () => {
    await s.stop();
    if (!nc.isClosed()) await nc.close();
  });
  return s;
}

beforeAll(async () => {
  platform = await Platform.start();
});

afterEach(async () => {
  for (const stop of running.splice(0)) await stop();
  await platform.destroyApps();
});

afterAll(async () => {
  await platform?.stop();
});

/** An event store whose connection is closed: a scheduler given it cannot start (its views fail). */
async function brokenStore(): Promise<EventStore> {
  const nc = await connect({ servers: platform.server.url });
  const store = await EventStore.connect(nc);
  await nc.close();
  return store;
}

const startedOf = (app: string) => platform.machinesOf(app).filter((m) => m.status === "started");

describe("scheduler lease", () => {
  it("runs one active replica; the standby is healthy and idle, and takes over at once on a clean stop", async () => {
    await platform.createApp("leased");
    await platform.startedMachine("leased", "l1", serviceConfig({ soft: 20, min: 1 }));
    const a = await replica("a");
    const b = await replica("b");
    expect(a.active()).toBe(true);
    expect(b.active()).toBe(false);
    expect(a.health()).toMatchObject({ ok: true, role: "active" });
    expect(b.health()).toMatchObject({ ok: true, role: "standby" });

    platform.load.set("leased", { concurrency: 60, machines: { l1: 60 } });
    await waitFor("3 started machines", () => (startedOf("leased").length === 3 ? true : undefined));
    expect(platform.scalingOf("leased").decisions).toHaveLength(1);

    const t0 = Date.now();
    await a.stop();
    await waitFor("the standby to take over", () => (b.active() ? true : undefined), 5_000);
    console.log(`clean stop: the standby took over after ${Date.now() - t0} ms`);
    expect(b.health()).toMatchObject({ ok: true, role: "active" });

    // The new leader acts: more load, one more decision, and none of the first one's actions again.
    platform.load.set("leased", { concurrency: 100, machines: { l1: 100 } });
    await waitFor("5 started machines", () => (startedOf("leased").length === 5 ? true : undefined));
    const { decisions } = platform.scalingOf("leased");
    expect(decisions).toHaveLength(2);
    const created = decisions.flatMap((d) => d.actions.map((x) => x.machineId));
    expect(new Set(created).size).toBe(created.length);
    expect(platform.machinesOf("leased")).toHaveLength(5);
  });

  it("stops acting when its lease is taken from it, and a replica acts again once that lease lapses", async () => {
    await platform.createApp("taken");
    await platform.startedMachine("taken", "t1", serviceConfig({ soft: 20, min: 1 }));
    const a = await replica("a");
    const b = await replica("b");
    expect(a.active()).toBe(true);

    // As after a partition: someone else holds the lease now. a's next renewal loses its compare-and-set.
    const nc = await connect({ servers: platform.server.url });
    try {
      // A KV put is a publish to the bucket's stream under $KV.<bucket>.<key>.
      await jetstream(nc).publish(
        `$KV.${LEASES_BUCKET}.${SCHEDULER_LEASE}`,
        JSON.stringify({ holder: "elsewhere", expires_at_ms: Date.now() + 2_000 }),
      );
    } finally {
      await nc.close();
    }
    await waitFor("a to stand by", () => (a.active() ? undefined : true), 5_000);
    expect(b.active()).toBe(false);
    // While nobody here holds it (the lease lapses 2 s after it was taken), load decides nothing.
    platform.load.set("taken", { concurrency: 60, machines: { t1: 60 } });
    await sleep(800);
    expect(a.active() || b.active()).toBe(false);
    expect(platform.scalingOf("taken").decisions).toHaveLength(0);

    await waitFor(
      "a replica to take the lapsed lease",
      () => (a.active() || b.active() ? true : undefined),
      5_000,
    );
    expect(a.active() && b.active()).toBe(false);
    await waitFor("3 started machines", () => (startedOf("taken").length === 3 ? true : undefined));
    expect(platform.scalingOf("taken").decisions).toHaveLength(1);
  });

  it("a failed start leaves no metric behind, and a holder that cannot start gives the lease up", async () => {
    const nc = await connect({ servers: platform.server.url });
    running.push(() => nc.close());
    const registry = new Registry();
    const store = await brokenStore();
    for (let i = 0; i < 2; i++) {
      // The second attempt fails for the same reason, not on a metric the first left registered.
      const err = await startScheduler({ nc, store, registry, logger, warmupMs: 0 }).catch((e: unknown) => e);
      expect(String(err)).not.toMatch(/already been registered|already registered/);
      expect(err).toBeInstanceOf(Error);
    }
    expect(registry.getSingleMetric("hangar_scheduler_decisions_total")).toBeUndefined();

    await platform.createApp("wedged");
    await platform.startedMachine("wedged", "w1", serviceConfig({ soft: 20, min: 1 }));
    const broken = await replica("broken", { store: await brokenStore() });
    const b = await replica("b");
    expect(b.active()).toBe(false);
    // broken holds the lease and fails to start; after its third failure it lets b have it.
    await waitFor("the replica that can start to take over", () => (b.active() ? true : undefined), 15_000);
    expect(broken.active()).toBe(false);
    expect(broken.health()).toMatchObject({ ok: true, role: "standby" });
    platform.load.set("wedged", { concurrency: 60, machines: { w1: 60 } });
    await waitFor("3 started machines", () => (startedOf("wedged").length === 3 ? true : undefined));
  });
});
