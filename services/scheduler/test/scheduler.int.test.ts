import { setTimeout as sleep } from "node:timers/promises";
import { createLogger } from "@hangar/telemetry";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type SchedulerOptions, startScheduler } from "../src/mod.js";
import { Platform, serviceConfig, waitFor } from "./harness.js";

const logger = createLogger("scheduler-test", { level: process.env.SCHED_LOG ?? "silent" });
let platform: Platform;
const running: (() => Promise<void>)[] = [];

/** A scheduler on a connection of its own, as a separate process would have. */
async function scheduler(opts: Partial<SchedulerOptions> = {}) {
  const nc = await connect({ servers: platform.server.url });
  const s = await startScheduler({ nc, logger, passIntervalMs: 200, warmupMs: 0, ...opts });
  /** Stops it and drops its connection, like a killed process (its blocked steps never resume). */
  const kill = async () => {
    await s.stop();
    if (!nc.isClosed()) await nc.close();
  };
  running.push(kill);
  return { ...s, kill };
}

beforeAll(async () => {
  platform = await Platform.start();
});

// A failed test must not leave a scheduler or an app behind for the next one.
afterEach(async () => {
  for (const kill of running.splice(0)) await kill();
  await platform.destroyApps();
  platform.proxySeq = undefined;
});

afterAll(async () => {
  await platform?.stop();
});

const startedOf = (app: string) => platform.machinesOf(app).filter((m) => m.status === "started");

describe("scheduler", () => {
  it("scales an app from 1 to 10 machines within a pass of a step to 200 connections, and records why", async () => {
    await platform.createApp("step");
    await platform.startedMachine("step", "m1", serviceConfig({ soft: 20, min: 1 }));
    const s = await scheduler();
    const t0 = Date.now();
    platform.load.set("step", { concurrency: 200, machines: { m1: 200 } });
    await waitFor("10 started machines", () => (startedOf("step").length === 10 ? true : undefined));
    console.log(`step 0 -> 200 connections: 10 machines started after ${Date.now() - t0} ms`);
    // The load stays: one more second of passes decides nothing more.
    await sleep(1000);
    const { decisions, panic } = platform.scalingOf("step");
    expect(panic).toBe(true);
    expect(decisions).toHaveLength(1);
    const d = decisions[0];
    expect(d).toMatchObject({ current: 1, desired: 10 });
    expect(d?.reason).toBe("panic: max 200 connections over 6 s / soft_limit 20 = 10 > 1 running");
    expect(d?.inputs).toMatchObject({
      panicConcurrency: 200,
      softLimit: 20,
      minMachines: 1,
      running: 1,
      panic: true,
      proxies: 1,
      busiestRegion: "local",
      concurrencyType: "connections",
    });
    expect(d?.actions).toHaveLength(9);
    for (const a of d?.actions ?? []) {
      expect(a).toMatchObject({ kind: "create", outcome: "done" });
      const m = platform.machine("step", a.machineId);
      expect(m?.status).toBe("started");
      const config = JSON.parse(m?.configJson ?? "{}") as {
        metadata?: Record<string, string>;
        guest?: unknown;
      };
      expect(config.metadata).toEqual({ fly_process_group: "app", hangar_scale_decision: d?.decisionId });
      expect(config.guest).toEqual({ cpus: 1, memory_mb: 128 });
    }
    expect(platform.placements.filter((p) => p.app === "step")).toHaveLength(9);
    const metrics = await s.registry.metrics();
    expect(metrics).toMatch(/hangar_scheduler_decisions_total\{app="step",direction="up",reason="panic"\} 1/);
    expect(metrics).toMatch(/hangar_scheduler_desired_machines\{app="step"\} 10/);
    expect(metrics).toMatch(/hangar_scheduler_concurrency\{app="step",window="panic"\} 200/);
    await s.stop();
    expect(platform.errors).toEqual([]);
  });

  it("finishes a killed scheduler's creates after restart, creating each machine exactly once", async () => {
    await platform.createApp("crash");
    await platform.startedMachine("crash", "c1", serviceConfig({ soft: 20, min: 1 }));
    // The first scheduler lets three creates through, holds three after placement and three before
    // anything, then dies.
    let creates = 0;
    let actions = 0;
    const never = new Promise<void>(() => undefined);
    const first = await scheduler({
      hooks: {
        beforeStep: (step, ref) => {
          if (ref.kind !== "create") return;
          if (step === "action" && ++actions > 6) return never;
          if (step === "create-machine" && ++creates > 3) return never;
        },
      },
    });
    platform.load.set("crash", { concurrency: 200, machines: { c1: 200 } });
    const decision = await waitFor("a decision with three creates done", () => {
      const d = platform.scalingOf("crash").decisions[0];
      return d && d.actions.filter((a) => a.outcome === "done").length === 3 ? d : undefined;
    });
    await first.kill();
    expect(decision.actions).toHaveLength(9);
    expect(platform.machinesOf("crash")).toHaveLength(4);
    const ids = decision.actions.map((a) => a.machineId);
    // Six were placed before the kill: three created, three held before CreateMachine.
    expect(new Set(platform.placements.filter((p) => p.app === "crash").map((p) => p.machine_id)).size).toBe(
      6,
    );

    // The restarted one takes its time over each create, so its passes see the creates in progress
    // under full load: they must count them and ask for nothing more.
    const second = await scheduler({
      hooks: { beforeStep: (step) => (step === "create-machine" ? sleep(1000) : undefined) },
    });
    await waitFor("every create done", () =>
      platform.scalingOf("crash").decisions[0]?.actions.every((a) => a.outcome === "done") ? true : undefined,
    );
    await waitFor("10 started machines", () => (startedOf("crash").length === 10 ? true : undefined));
    const machines = platform.machinesOf("crash").map((m) => m.machineId);
    expect(machines.sort()).toEqual(["c1", ...ids].sort());
    // Placement asked again for the held ones gave each machine its one host.
    const placed = platform.placements.filter((p) => p.app === "crash");
    expect(new Set(placed.map((p) => p.machine_id))).toEqual(new Set(ids));
    for (const id of ids) {
      const m = platform.machine("crash", id);
      expect(m?.hostId).toBeTruthy();
    }
    // The restarted scheduler continued from the log: no second decision.
    await sleep(600);
    expect(platform.scalingOf("crash").decisions).toHaveLength(1);
    expect(platform.machinesOf("crash")).toHaveLength(10);
    await second.stop();
    expect(platform.errors).toEqual([]);
  });

  it("autostop: cordons, waits for the proxy to show the machine drained, then stops; min_machines_running holds", async () => {
    await platform.createApp("calm");
    const config = serviceConfig({ soft: 20, min: 1, autostop: "stop" });
    for (const id of ["k1", "k2", "k3"]) await platform.startedMachine("calm", id, config);
    // min_machines_running: at every change, at least one machine is started and routable.
    let lowest = Number.POSITIVE_INFINITY;
    const watch = setInterval(() => {
      const routable = startedOf("calm").filter((m) => !m.cordoned).length;
      lowest = Math.min(lowest, routable);
    }, 10);
    // The proxy has not folded anything after this point: a cordon is not yet seen by it.
    platform.proxySeq = platform.machines.lastSeq;
    platform.load.set("calm", { concurrency: 0, machines: {} });
    await scheduler({ panicWindowS: 1, stableWindowS: 2, drainTimeoutS: 60 });

    await waitFor("two machines cordoned", () =>
      platform.machinesOf("calm").filter((m) => m.cordoned).length === 2 ? true : undefined,
    );
    await sleep(1000);
    // Cordoned but not drained: nothing is stopped, and no third machine is touched (min 1).
    expect(startedOf("calm")).toHaveLength(3);
    expect(platform.machinesOf("calm").filter((m) => m.cordoned)).toHaveLength(2);
    const cordoned = platform
      .machinesOf("calm")
      .filter((m) => m.cordoned)
      .map((m) => m.machineId);

    // The proxy folds the cordons but one cordoned machine still has a connection.
    platform.proxySeq = undefined;
    platform.load.set("calm", { concurrency: 1, machines: { [cordoned[0] as string]: 1 } });
    await waitFor("the idle cordoned machine stopped", () =>
      platform.machine("calm", cordoned[1] as string)?.status === "stopped" ? true : undefined,
    );
    await sleep(800);
    expect(platform.machine("calm", cordoned[0] as string)?.status).toBe("started");

    // Its connection ends: it is stopped too, and uncordoned.
    platform.load.set("calm", { concurrency: 0, machines: {} });
    await waitFor("both stopped", () =>
      cordoned.every((id) => platform.machine("calm", id)?.status === "stopped") ? true : undefined,
    );
    await waitFor("uncordoned", () =>
      platform.machinesOf("calm").every((m) => !m.cordoned) ? true : undefined,
    );
    clearInterval(watch);
    expect(startedOf("calm")).toHaveLength(1);
    expect(lowest).toBe(1);
    const actions = platform.scalingOf("calm").decisions.flatMap((d) => d.actions);
    expect(actions).toHaveLength(2);
    for (const a of actions) {
      expect(a.kind).toBe("stop");
      expect(a.outcome).toBe("done");
      expect(a.message).toMatch(/^drained in [\d.]+ s; stop requested$/);
    }
    // Stays at min_machines_running.
    await sleep(600);
    expect(platform.scalingOf("calm").decisions.flatMap((d) => d.actions)).toHaveLength(2);
    expect(platform.errors).toEqual([]);
  });
});

describe("scheduler, load coming back during a drain", () => {
  it("keeps the cordoned machine (uncordoned, outcome kept) instead of starting another", async () => {
    await platform.createApp("back");
    const config = serviceConfig({ soft: 20, min: 1, autostop: "suspend" });
    for (const id of ["b1", "b2"]) await platform.startedMachine("back", id, config);
    platform.proxySeq = platform.machines.lastSeq;
    platform.load.set("back", { concurrency: 0, machines: {} });
    await scheduler({ panicWindowS: 1, stableWindowS: 2, drainTimeoutS: 60 });
    const cordoned = await waitFor("a machine cordoned", () =>
      platform.machinesOf("back").find((m) => m.cordoned),
    );
    const other = cordoned.machineId === "b1" ? "b2" : "b1";
    // The proxy has not even folded the cordon when 30 connections arrive: 2 machines are needed.
    platform.load.set("back", { concurrency: 30, machines: { [other]: 30 } });
    const action = await waitFor("the action kept", () =>
      platform.scalingOf("back").decisions[0]?.actions.find((a) => a.outcome !== ""),
    );
    expect(action).toMatchObject({ kind: "suspend", machineId: cordoned.machineId, outcome: "kept" });
    expect(action.message).toMatch(
      /^drain stopped after [\d.]+ s; kept: the app needs 2 machines and 1 others run$/,
    );
    await waitFor("uncordoned", () =>
      platform.machine("back", cordoned.machineId)?.cordoned ? undefined : true,
    );
    await sleep(600);
    expect(
      platform
        .machinesOf("back")
        .map((m) => [m.machineId, m.status, m.cordoned])
        .sort(),
    ).toEqual([
      ["b1", "started", false],
      ["b2", "started", false],
    ]);
    expect(platform.scalingOf("back").decisions).toHaveLength(1);
    expect(platform.errors).toEqual([]);
  });
});

describe("scheduler, isHeld (the leader's lease)", () => {
  it("acts only while isHeld says so: no pass, no decision and no step once the lease is gone", async () => {
    await platform.createApp("held");
    await platform.startedMachine("held", "h1", serviceConfig({ soft: 20, min: 1 }));
    platform.load.set("held", { concurrency: 60, machines: { h1: 60 } });
    // Lost while it started: the first pass and every later one decide nothing.
    let held = false;
    let release: () => void = () => undefined;
    const atCreate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let creates = 0;
    await scheduler({
      isHeld: () => held,
      hooks: {
        beforeStep: async (step) => {
          if (step !== "create-machine") return;
          creates++;
          await atCreate;
        },
      },
    });
    await sleep(800);
    expect(platform.scalingOf("held").decisions).toHaveLength(0);

    // Held: it decides and its actions reach the create step, where the test holds them.
    held = true;
    await waitFor("the creates to reach their step", () => (creates === 2 ? true : undefined));
    expect(platform.scalingOf("held").decisions).toHaveLength(1);
    // The lease goes while the steps wait: released, they create nothing and finish nothing.
    held = false;
    release();
    await sleep(800);
    expect(platform.machinesOf("held")).toHaveLength(1);
    expect(platform.scalingOf("held").decisions[0]?.actions.every((a) => a.outcome === "")).toBe(true);
  });
});
