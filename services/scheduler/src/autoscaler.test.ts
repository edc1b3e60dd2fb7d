import { type ScalingCommand, type ScalingState, scalingDecider } from "@hangar/domain";
import { describe, expect, it } from "vitest";
import { type AppMachine, Autoscaler, type PassResult } from "./autoscaler.js";
import type { AppLoad } from "./load.js";

interface Service {
  soft?: number;
  min?: number;
  max?: number;
  autostop?: "off" | "stop" | "suspend";
  autostart?: boolean;
}

function config(s: Service = {}): string {
  return JSON.stringify({
    image: "dir:/srv/app",
    guest: { cpus: 1, memory_mb: 256 },
    services: [
      {
        protocol: "tcp",
        internal_port: 8080,
        ports: [{ port: 80, handlers: ["http"] }],
        concurrency: { type: "connections", soft_limit: s.soft ?? 20 },
        autostop: s.autostop ?? "stop",
        autostart: s.autostart ?? true,
        min_machines_running: s.min ?? 0,
        ...(s.max !== undefined ? { max_machines_running: s.max } : {}),
      },
    ],
  });
}

let seq = 0;
function machine(
  id: string,
  status: AppMachine["status"] = "started",
  region = "ams",
  s: Service = {},
): AppMachine {
  return { machineId: id, region, status, cordoned: false, configJson: config(s), createdSeq: ++seq };
}

function load(concurrency: number, perMachine: Record<string, [region: string, n: number]> = {}): AppLoad {
  const l: AppLoad = { concurrency, proxies: 1, machines: new Map(), regions: new Map() };
  for (const [id, [region, n]] of Object.entries(perMachine)) {
    l.machines.set(id, n);
    l.regions.set(region, (l.regions.get(region) ?? 0) + n);
  }
  return l;
}

/** Folds a pass's commands into the app's SCALING state, as the log would. */
function record(state: ScalingState, result: PassResult): ScalingState {
  const commands: ScalingCommand[] = [
    ...(result.panicChange ? [result.panicChange] : []),
    ...(result.decision ? [result.decision] : []),
  ];
  for (const c of commands)
    for (const e of scalingDecider.decide(c, state)) state = scalingDecider.evolve(state, e);
  return state;
}

function finishAll(state: ScalingState): ScalingState {
  for (const d of state.decisions)
    for (const a of d.actions)
      if (a.outcome === "")
        for (const e of scalingDecider.decide(
          {
            type: "FinishScaleAction",
            decisionId: d.decisionId,
            machineId: a.machineId,
            outcome: "done",
            message: "",
            finishedAtMs: 0,
          },
          state,
        ))
          state = scalingDecider.evolve(state, e);
  return state;
}

const empty = () => scalingDecider.initialState();

describe("autoscaler", () => {
  it("decides 10 machines within one pass when load steps from 0 to 200 with soft_limit 20", () => {
    const scaler = new Autoscaler();
    const machines = [machine("m1", "started", "ams", { min: 1 })];
    const quiet = scaler.pass({ app: "a", nowMs: 0, machines, scaling: empty(), load: load(0) });
    expect(quiet.decision).toBeUndefined();
    expect(quiet.panicChange).toBeUndefined();
    const r = scaler.pass({
      app: "a",
      nowMs: 1000,
      machines,
      scaling: empty(),
      load: load(200, { m1: ["ams", 200] }),
    });
    expect(r.panicChange).toMatchObject({ type: "SetPanic", panic: true });
    const d = r.decision;
    expect(d).toBeDefined();
    expect(d?.current).toBe(1);
    expect(d?.desired).toBe(10);
    expect(d?.actions).toHaveLength(9);
    expect(d?.actions.every((a) => a.kind === "create" && a.region === "ams")).toBe(true);
    expect(new Set(d?.actions.map((a) => a.machineId)).size).toBe(9);
    for (const a of d?.actions ?? []) expect(a.machineId).toMatch(/^[0-9a-f]{14}$/);
    expect(d?.reason).toBe("panic: max 200 connections over 6 s / soft_limit 20 = 10 > 1 running");
    expect(d?.inputs).toEqual({
      panicConcurrency: 200,
      stableConcurrency: 100,
      concurrencyType: "connections",
      softLimit: 20,
      minMachines: 1,
      maxMachines: 20,
      running: 1,
      sleeping: 0,
      panic: true,
      panicWindowS: 6,
      stableWindowS: 60,
      proxies: 1,
      busiestRegion: "ams",
      autostop: "stop",
    });
  });

  it("counts machines being created as running, so the next pass asks for nothing more", () => {
    const scaler = new Autoscaler();
    const machines = [machine("m1")];
    const first = scaler.pass({ app: "a", nowMs: 0, machines, scaling: empty(), load: load(200) });
    const scaling = record(empty(), first);
    const again = scaler.pass({ app: "a", nowMs: 1000, machines, scaling, load: load(200) });
    expect(again.decision).toBeUndefined();
    expect(again.assessment?.running).toBe(10);
  });

  it("starts stopped and suspended machines before creating, busiest region first, suspended before stopped", () => {
    const scaler = new Autoscaler();
    const machines = [
      machine("run-ams", "started", "ams"),
      machine("run-fra", "started", "fra"),
      machine("stopped-ams", "stopped", "ams"),
      machine("stopped-fra", "stopped", "fra"),
      machine("suspended-fra", "suspended", "fra"),
    ];
    // fra carries 90 on one machine, ams 10: fra is the busiest region.
    const r = scaler.pass({
      app: "a",
      nowMs: 0,
      machines,
      scaling: empty(),
      load: load(100, { "run-ams": ["ams", 10], "run-fra": ["fra", 90] }),
    });
    expect(r.decision?.desired).toBe(5);
    expect(r.decision?.inputs.busiestRegion).toBe("fra");
    expect(r.decision?.inputs.sleeping).toBe(3);
    expect(r.decision?.actions.map((a) => [a.kind, a.kind === "create" ? a.region : a.machineId])).toEqual([
      ["start", "suspended-fra"],
      ["start", "stopped-fra"],
      ["start", "stopped-ams"],
    ]);
    const more = new Autoscaler().pass({
      app: "a",
      nowMs: 0,
      machines,
      scaling: empty(),
      load: load(140, { "run-ams": ["ams", 10], "run-fra": ["fra", 130] }),
    });
    expect(more.decision?.actions.map((a) => a.kind)).toEqual([
      "start",
      "start",
      "start",
      "create",
      "create",
    ]);
    expect(more.decision?.actions.slice(3).every((a) => a.region === "fra")).toBe(true);
  });

  it("never scales down in panic, and leaves panic a whole stable window after the threshold was last met", () => {
    const scaler = new Autoscaler({ panicWindowS: 2, stableWindowS: 10 });
    let machines = [machine("m1")];
    let scaling = empty();
    const up = scaler.pass({ app: "a", nowMs: 0, machines, scaling, load: load(100) });
    expect(up.decision?.desired).toBe(5);
    scaling = finishAll(record(scaling, up));
    machines = [
      ...machines,
      ...(up.decision?.actions ?? []).map((a) => machine(a.machineId, "started", a.region)),
    ];
    expect(scaling.panic).toBe(true);
    // Load gone at once: the stable mean falls, but panic mode holds every machine.
    for (let t = 1000; t < 10_000; t += 1000) {
      const r = scaler.pass({ app: "a", nowMs: t, machines, scaling, load: load(0) });
      expect(r.decision).toBeUndefined();
      expect(r.panicChange).toBeUndefined();
      expect(r.assessment?.desired).toBe(5);
    }
    const leave = scaler.pass({ app: "a", nowMs: 10_000, machines, scaling, load: load(0) });
    expect(leave.panicChange).toMatchObject({ panic: false });
    expect(leave.decision?.actions).toHaveLength(1);
    expect(leave.decision?.reason).toMatch(/^scale down: mean [\d.]+ connections over 10 s/);
  });

  it("scales down at most one machine per region per pass: the least loaded, ties the newest", () => {
    const scaler = new Autoscaler({ panicWindowS: 1, stableWindowS: 3 });
    const machines = [
      machine("ams-old", "started", "ams"),
      machine("ams-busy", "started", "ams"),
      machine("ams-new", "started", "ams"),
      machine("fra-1", "started", "fra"),
      machine("fra-2", "started", "fra"),
    ];
    const l = () => load(3, { "ams-busy": ["ams", 2], "fra-1": ["fra", 1] });
    let scaling = empty();
    let r: PassResult = {};
    for (let t = 0; t <= 3000; t += 1000) {
      r = scaler.pass({ app: "a", nowMs: t, machines, scaling, load: l() });
      if (r.decision) break;
    }
    expect(r.decision?.desired).toBe(1);
    // Both idle: the newer goes first.
    expect(r.decision?.actions).toEqual([
      { kind: "stop", machineId: "fra-2", region: "fra" },
      { kind: "stop", machineId: "ams-new", region: "ams" },
    ]);
    scaling = record(scaling, r);
    const next = scaler.pass({ app: "a", nowMs: 4000, machines, scaling, load: l() });
    // Three run (two are being stopped): again one per region, the idle one before the loaded one.
    expect(next.decision?.current).toBe(3);
    expect(next.decision?.actions).toEqual([
      { kind: "stop", machineId: "ams-old", region: "ams" },
      { kind: "stop", machineId: "fra-1", region: "fra" },
    ]);
    scaling = record(scaling, next);
    const last = scaler.pass({ app: "a", nowMs: 5000, machines, scaling, load: l() });
    expect(last.assessment?.running).toBe(1);
    expect(last.decision).toBeUndefined();
  });

  it("keeps a machine being drained rather than starting another when load comes back", () => {
    const scaler = new Autoscaler({ panicWindowS: 1, stableWindowS: 2 });
    const machines = [machine("m1"), machine("m2"), machine("m3")];
    const down = scaler.pass({ app: "a", nowMs: 0, machines, scaling: empty(), load: load(0) });
    expect(down.decision?.actions).toEqual([{ kind: "stop", machineId: "m3", region: "ams" }]);
    const scaling = record(empty(), down);
    const cordoned = machines.map((m) => (m.machineId === "m3" ? { ...m, cordoned: true } : m));
    const back = scaler.pass({ app: "a", nowMs: 1000, machines: cordoned, scaling, load: load(60) });
    expect(back.assessment).toMatchObject({ running: 2, desired: 3 });
    expect(back.decision).toBeUndefined();
    expect(back.held).toMatch(/being drained are kept first/);
    // Beyond what the drained machine covers, the rest is started or created as usual.
    const more = scaler.pass({ app: "a", nowMs: 1500, machines: cordoned, scaling, load: load(80) });
    expect(more.decision?.actions.map((a) => a.kind)).toEqual(["create"]);
  });

  it("never scales down below what the panic window's peak needs", () => {
    const scaler = new Autoscaler({ panicWindowS: 2, stableWindowS: 10 });
    const machines = [1, 2, 3, 4].map((i) => machine(`m${i}`));
    // Nine quiet seconds, then a burst that needs 2: the mean says 1, the peak says 2.
    let r: PassResult = {};
    for (let t = 0; t < 9000; t += 1000)
      r = scaler.pass({ app: "a", nowMs: t, machines, scaling: empty(), load: load(0) });
    r = scaler.pass({ app: "a", nowMs: 9000, machines, scaling: empty(), load: load(40) });
    expect(r.decision?.desired).toBe(2);
    expect(r.decision?.reason).toBe(
      "scale down: max 40 connections over 2 s / soft_limit 20 = 2 < 4 running",
    );
  });

  it("keeps min_machines_running and max_machines_running", () => {
    const machines = [1, 2, 3].map((i) => machine(`m${i}`, "started", "ams", { min: 2, max: 4 }));
    const down = new Autoscaler().pass({ app: "a", nowMs: 0, machines, scaling: empty(), load: load(0) });
    expect(down.decision?.desired).toBe(2);
    expect(down.decision?.actions).toHaveLength(1);
    expect(down.decision?.reason).toMatch(/held at min_machines_running 2$/);

    const one = [machine("m1", "started", "ams", { max: 4 })];
    const up = new Autoscaler().pass({
      app: "a",
      nowMs: 0,
      machines: one,
      scaling: empty(),
      load: load(500),
    });
    expect(up.decision?.desired).toBe(4);
    expect(up.decision?.actions).toHaveLength(3);
    expect(up.decision?.reason).toMatch(/capped at max_machines_running 4$/);

    const none = [machine("m1", "stopped", "ams", { min: 1 })];
    const raise = new Autoscaler().pass({
      app: "a",
      nowMs: 0,
      machines: none,
      scaling: empty(),
      load: load(0),
    });
    expect(raise.decision?.actions).toEqual([{ kind: "start", machineId: "m1", region: "ams" }]);
    expect(raise.decision?.reason).toBe("0 running < min_machines_running 1");
  });

  it("never starts or creates with autostart off, never stops with autostop off", () => {
    const noStart = [machine("m1", "started", "ams", { autostart: false }), machine("m2", "stopped")];
    // The newest machine is the template: m2's settings would allow starts, so make it the older one.
    noStart.reverse();
    for (const [i, m] of noStart.entries()) m.createdSeq = i;
    const up = new Autoscaler().pass({
      app: "a",
      nowMs: 0,
      machines: noStart,
      scaling: empty(),
      load: load(200),
    });
    expect(up.assessment?.desired).toBe(10);
    expect(up.decision).toBeUndefined();
    expect(up.held).toMatch(/autostart is off/);

    const noStop = [1, 2, 3].map((i) => machine(`m${i}`, "started", "ams", { autostop: "off" }));
    const down = new Autoscaler().pass({
      app: "a",
      nowMs: 0,
      machines: noStop,
      scaling: empty(),
      load: load(0),
    });
    expect(down.assessment?.desired).toBe(0);
    expect(down.decision).toBeUndefined();
    expect(down.held).toMatch(/autostop is off/);
  });

  it("creates no clone for a machine that is on its way to stopped or suspended: it starts next pass", () => {
    const scaler = new Autoscaler({ panicWindowS: 1, stableWindowS: 2 });
    const going = [machine("m1", "suspending", "ams")];
    const now = scaler.pass({ app: "a", nowMs: 0, machines: going, scaling: empty(), load: load(1) });
    expect(now.decision).toBeUndefined();
    const asleep = [machine("m1", "suspended", "ams")];
    const next = scaler.pass({ app: "a", nowMs: 1000, machines: asleep, scaling: empty(), load: load(1) });
    expect(next.decision?.actions).toEqual([{ kind: "start", machineId: "m1", region: "ams" }]);
  });

  it("stops no machine that started less than a stable window ago", () => {
    const scaler = new Autoscaler({ panicWindowS: 1, stableWindowS: 10 });
    const machines = [
      { ...machine("old", "started", "ams", { autostop: "stop" }), startedAtMs: 0 },
      { ...machine("fresh", "started", "ams", { autostop: "stop" }), startedAtMs: 5_000 },
    ];
    const early = scaler.pass({ app: "a", nowMs: 12_000, machines, scaling: empty(), load: load(0) });
    // Only the one that ran a whole window goes, though the fresh one is newer (the usual first pick).
    expect(early.decision?.actions).toEqual([{ kind: "stop", machineId: "old", region: "ams" }]);
    const later = new Autoscaler({ panicWindowS: 1, stableWindowS: 10 }).pass({
      app: "a",
      nowMs: 15_000,
      machines,
      scaling: empty(),
      load: load(0),
    });
    expect(later.decision?.actions).toEqual([{ kind: "stop", machineId: "fresh", region: "ams" }]);
  });

  it("suspends with autostop suspend", () => {
    const machines = [1, 2].map((i) => machine(`m${i}`, "started", "ams", { autostop: "suspend", min: 1 }));
    const r = new Autoscaler().pass({ app: "a", nowMs: 0, machines, scaling: empty(), load: load(0) });
    expect(r.decision?.actions).toEqual([{ kind: "suspend", machineId: "m2", region: "ams" }]);
  });

  it("starts a stopped machine on a volume but never clones one: the clone would mount the same volume", () => {
    const scaler = new Autoscaler();
    const onVolume = (m: AppMachine): AppMachine => ({
      ...m,
      configJson: JSON.stringify({
        ...JSON.parse(m.configJson),
        mounts: [{ volume: "vol_0123456789abcdef", path: "/data" }],
      }),
    });
    const machines = [onVolume(machine("run")), onVolume(machine("slept", "stopped"))];
    const r = scaler.pass({
      app: "a",
      nowMs: 1000,
      machines,
      scaling: empty(),
      load: load(200, { run: ["ams", 200] }),
    });
    expect(r.decision?.actions).toEqual([{ kind: "start", machineId: "slept", region: "ams" }]);
    const busy = finishAll(record(empty(), r));
    const all = machines.map((m) => ({ ...m, status: "started" as const }));
    const again = scaler.pass({
      app: "a",
      nowMs: 2000,
      machines: all,
      scaling: busy,
      load: load(200, { run: ["ams", 200] }),
    });
    expect(again.decision).toBeUndefined();
    expect(again.held).toBe(
      "no stopped machine to start: machines on volumes are not cloned (each needs a volume of its own)",
    );
  });

  it("does not scale apps whose machines have no services", () => {
    const plain: AppMachine = { ...machine("m1"), configJson: JSON.stringify({ image: "dir:/x" }) };
    const r = new Autoscaler().pass({
      app: "a",
      nowMs: 0,
      machines: [plain],
      scaling: empty(),
      load: load(500),
    });
    expect(r).toEqual({});
  });

  it("waits for proxies to report after start, and stops nothing while no proxy is live", () => {
    const machines = [machine("m1"), machine("m2")];
    const scaler = new Autoscaler({ warmupMs: 3000 });
    const early = scaler.pass({ app: "a", nowMs: 0, machines, scaling: empty(), load: load(200) });
    expect(early.decision).toBeUndefined();
    expect(early.held).toMatch(/warming up/);
    expect(
      scaler.pass({ app: "a", nowMs: 3000, machines, scaling: empty(), load: load(200) }).decision,
    ).toBeDefined();

    const blind = new Autoscaler();
    const r = blind.pass({
      app: "a",
      nowMs: 0,
      machines,
      scaling: empty(),
      load: { ...load(0), proxies: 0 },
    });
    expect(r.assessment?.desired).toBe(0);
    expect(r.decision).toBeUndefined();
    expect(r.held).toMatch(/no live proxy/);
  });

  it("backs off after a decision whose action failed", () => {
    const scaler = new Autoscaler({ failureBackoffMs: 5000 });
    const machines = [machine("m1")];
    const first = scaler.pass({ app: "a", nowMs: 0, machines, scaling: empty(), load: load(60) });
    let scaling = record(empty(), first);
    for (const a of first.decision?.actions ?? [])
      for (const e of scalingDecider.decide(
        {
          type: "FinishScaleAction",
          decisionId: first.decision?.decisionId ?? "",
          machineId: a.machineId,
          outcome: "failed",
          message: "no room",
          finishedAtMs: 10,
        },
        scaling,
      ))
        scaling = scalingDecider.evolve(scaling, e);
    const held = scaler.pass({ app: "a", nowMs: 1000, machines, scaling, load: load(60) });
    expect(held.decision).toBeUndefined();
    expect(held.held).toMatch(/backing off/);
    expect(scaler.pass({ app: "a", nowMs: 5000, machines, scaling, load: load(60) }).decision).toBeDefined();
  });
});
