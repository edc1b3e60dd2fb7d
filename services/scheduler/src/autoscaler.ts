import { randomBytes } from "node:crypto";
import { type ScalingSettings, scalingSettings } from "@hangar/config";
import {
  type MachineStatus,
  newMachineId,
  type ScaleActionKind,
  type ScaleInputs,
  type ScalingCommand,
  type ScalingState,
  unfinishedActions,
} from "@hangar/domain";
import type { AppLoad } from "./load.js";
import { ConcurrencyWindows } from "./windows.js";

/** Knative's defaults: a 6 s panic window inside a 60 s stable window. */
export const DEFAULT_PANIC_WINDOW_S = 6;
export const DEFAULT_STABLE_WINDOW_S = 60;
/** After a decision with a failed action, the app gets no new decision for this long (ms). */
export const DEFAULT_FAILURE_BACKOFF_MS = 10_000;

/** One of the app's machines as the MACHINES stream has it. */
export interface AppMachine {
  machineId: string;
  region: string;
  status: MachineStatus;
  cordoned: boolean;
  configJson: string;
  /** Stream sequence of its creation: a larger one is a newer machine. */
  createdSeq: number;
  /** When it last started (ms since the epoch, from its MachineStarted event); 0 when unknown. */
  startedAtMs?: number;
}

/** What one pass knows about an app. */
export interface PassInput {
  app: string;
  nowMs: number;
  machines: AppMachine[];
  scaling: ScalingState;
  load: AppLoad;
}

export type DecideScale = Extract<ScalingCommand, { type: "DecideScale" }>;
export type SetPanic = Extract<ScalingCommand, { type: "SetPanic" }>;

/** How the autoscaler sizes an app right now. */
export interface Assessment {
  settings: ScalingSettings;
  /** The newest machine with services: what clones copy, and where they go when there is no load. */
  template: AppMachine;
  running: number;
  sleeping: number;
  panicConcurrency: number;
  stableConcurrency: number;
  panic: boolean;
  desired: number;
  /** Why desired differs from running, in words ("" when it does not). */
  reason: string;
  busiestRegion: string;
}

/** What a pass decided for one app. */
export interface PassResult {
  /** Undefined when the app is not scaled: none of its machines has a service. */
  assessment?: Assessment;
  /** Entering or leaving panic mode, to record before the decision. */
  panicChange?: SetPanic;
  /** The decision to record; undefined when the pass changes nothing. */
  decision?: DecideScale;
  /** Why no decision was made although desired differs from running. */
  held?: string;
}

export interface AutoscalerOptions {
  panicWindowS?: number;
  stableWindowS?: number;
  /** No decision until this long after the first pass, so proxies have reported (ms, default 0). */
  warmupMs?: number;
  failureBackoffMs?: number;
  newMachineId?: () => string;
  newDecisionId?: () => string;
}

const RUNNING: ReadonlySet<MachineStatus> = new Set(["started", "starting", "replacing"]);
const GONE: ReadonlySet<MachineStatus> = new Set(["destroyed", "destroying"]);

function newDecisionId(): string {
  return `sd${randomBytes(8).toString("hex")}`;
}

/** Whether the machine mounts a volume: a volume attaches to one machine, so such a machine is never cloned. */
function onVolume(machine: AppMachine): boolean {
  const { mounts } = JSON.parse(machine.configJson || "{}") as { mounts?: unknown[] | null };
  return Array.isArray(mounts) && mounts.length > 0;
}

/** The machines the autoscaler sizes: not destroyed and with a service, each with its settings. */
export function scaledMachines(machines: AppMachine[]): AppMachine[] {
  return machines.filter((m) => !GONE.has(m.status) && scalingSettings(m.configJson) !== undefined);
}

/** The newest scaled machine, whose config clones copy; undefined when the app is not scaled. */
export function templateOf(machines: AppMachine[]): AppMachine | undefined {
  let best: AppMachine | undefined;
  for (const m of scaledMachines(machines)) if (!best || m.createdSeq > best.createdSeq) best = m;
  return best;
}

/**
 * The autoscaler, without I/O: once a pass per app it observes the app's concurrency, keeps the
 * panic and stable windows, and decides which machines to start, create, stop or suspend.
 *
 * Sizing follows Knative's KPA: desired = ceil(concurrency / soft_limit). The panic window's maximum
 * scales up at once; panic mode (desired at least twice what runs) forbids scaling down until a whole
 * stable window passed without meeting that threshold; otherwise the stable window's mean scales down.
 */
export class Autoscaler {
  readonly panicWindowS: number;
  readonly stableWindowS: number;
  private readonly warmupMs: number;
  private readonly failureBackoffMs: number;
  private readonly newMachineId: () => string;
  private readonly newDecisionId: () => string;
  private readonly windows = new Map<string, ConcurrencyWindows>();
  private readonly panicMetMs = new Map<string, number>();
  private readonly firstSeenMs = new Map<string, number>();
  private firstPassMs: number | undefined;

  constructor(opts: AutoscalerOptions = {}) {
    this.panicWindowS = opts.panicWindowS ?? DEFAULT_PANIC_WINDOW_S;
    this.stableWindowS = opts.stableWindowS ?? DEFAULT_STABLE_WINDOW_S;
    if (!(this.panicWindowS > 0) || !(this.stableWindowS >= this.panicWindowS))
      throw new RangeError(
        `the panic window (${this.panicWindowS} s) must be positive and no longer than the stable window (${this.stableWindowS} s)`,
      );
    this.warmupMs = opts.warmupMs ?? 0;
    this.failureBackoffMs = opts.failureBackoffMs ?? DEFAULT_FAILURE_BACKOFF_MS;
    this.newMachineId = opts.newMachineId ?? newMachineId;
    this.newDecisionId = opts.newDecisionId ?? newDecisionId;
  }

  /** One pass for one app: observe its concurrency, then decide (or not). */
  pass(input: PassInput): PassResult {
    const { app, nowMs } = input;
    this.firstPassMs ??= nowMs;
    if (!this.firstSeenMs.has(app)) this.firstSeenMs.set(app, nowMs);
    const windows = this.windowsOf(app);
    // With no live proxy the load is unknown, not zero: the windows keep what they had and age.
    if (input.load.proxies > 0) windows.observe(nowMs, input.load.concurrency);
    const scaled = scaledMachines(input.machines);
    const template = templateOf(input.machines);
    const settings = template ? scalingSettings(template.configJson) : undefined;
    if (!template || !settings) return {};

    const counts = countMachines(scaled, input.scaling);
    const panicValue = windows.panic(nowMs);
    const desiredPanic = Math.ceil(panicValue / settings.softLimit);
    const meets = desiredPanic > counts.running && desiredPanic >= 2 * Math.max(counts.running, 1);
    let panic = input.scaling.panic;
    let panicChange: SetPanic | undefined;
    if (meets) {
      this.panicMetMs.set(app, nowMs);
      if (!panic) {
        panic = true;
        panicChange = {
          type: "SetPanic",
          panic: true,
          atMs: nowMs,
          reason: `desired ${desiredPanic} (max ${fmt(panicValue)} ${settings.type} over ${this.panicWindowS} s / soft_limit ${settings.softLimit}) >= 2 x ${Math.max(counts.running, 1)} running`,
        };
      }
    } else if (panic) {
      // After a restart the last pass that met the threshold is unknown: count from our first look.
      const lastMet =
        this.panicMetMs.get(app) ?? Math.max(input.scaling.panicSinceMs, this.firstSeenMs.get(app) ?? nowMs);
      if (nowMs - lastMet >= this.stableWindowS * 1000) {
        panic = false;
        panicChange = {
          type: "SetPanic",
          panic: false,
          atMs: nowMs,
          reason: `a whole stable window (${this.stableWindowS} s) without desired >= 2 x running`,
        };
      }
    }

    const assessment = this.assess(input, scaled, template, settings, counts, panic);
    const result: PassResult = { assessment, ...(panicChange ? { panicChange } : {}) };
    if (assessment.desired === counts.running) return result;
    if (nowMs - this.firstPassMs < this.warmupMs)
      return { ...result, held: "warming up: proxies report first" };
    const last = input.scaling.decisions.at(-1);
    if (
      last &&
      nowMs - last.decidedAtMs < this.failureBackoffMs &&
      last.actions.some((a) => a.outcome === "failed")
    )
      return { ...result, held: `decision ${last.decisionId} had a failed action: backing off` };
    if (assessment.desired < counts.running && input.load.proxies === 0)
      return { ...result, held: "no live proxy: the load is unknown, so nothing is stopped" };

    const actions =
      assessment.desired > counts.running
        ? this.scaleUp(input, scaled, assessment, counts)
        : scaleDown(input, scaled, assessment, counts, this.stableWindowS * 1000);
    if (actions.length === 0) {
      const held =
        assessment.desired <= counts.running
          ? "autostop is off: nothing is stopped"
          : !settings.autostart
            ? "autostart is off: nothing is started or created"
            : assessment.desired <= counts.running + counts.draining
              ? "machines being drained are kept first (the executor uncordons them)"
              : onVolume(assessment.template)
                ? "no stopped machine to start: machines on volumes are not cloned (each needs a volume of its own)"
                : `no machine to start and max_machines_running ${settings.maxMachinesRunning} reached`;
      return { ...result, held };
    }
    const inputs: ScaleInputs = {
      panicConcurrency: assessment.panicConcurrency,
      stableConcurrency: assessment.stableConcurrency,
      concurrencyType: settings.type,
      softLimit: settings.softLimit,
      minMachines: settings.minMachinesRunning,
      maxMachines: settings.maxMachinesRunning,
      running: counts.running,
      sleeping: assessment.sleeping,
      panic,
      panicWindowS: Math.round(this.panicWindowS),
      stableWindowS: Math.round(this.stableWindowS),
      proxies: input.load.proxies,
      busiestRegion: assessment.busiestRegion,
      autostop: settings.autostop,
    };
    return {
      ...result,
      decision: {
        type: "DecideScale",
        decisionId: this.newDecisionId(),
        decidedAtMs: nowMs,
        inputs,
        current: counts.running,
        desired: assessment.desired,
        reason: assessment.reason,
        actions,
      },
    };
  }

  /**
   * Whether the app needs more running machines than it has now (machines being stopped not counted):
   * the re-check after a drain, which keeps the machine when it does. Observes nothing.
   */
  assessNow(input: PassInput): Assessment | undefined {
    const template = templateOf(input.machines);
    const settings = template ? scalingSettings(template.configJson) : undefined;
    if (!template || !settings) return undefined;
    const scaled = scaledMachines(input.machines);
    return this.assess(
      input,
      scaled,
      template,
      settings,
      countMachines(scaled, input.scaling),
      input.scaling.panic,
    );
  }

  /** The app's windows now (for metrics). */
  concurrency(app: string, nowMs: number): { panic: number; stable: number } {
    const w = this.windowsOf(app);
    return { panic: w.panic(nowMs), stable: w.stable(nowMs) };
  }

  /** Forgets an app that is gone. */
  forget(app: string): void {
    this.windows.delete(app);
    this.panicMetMs.delete(app);
    this.firstSeenMs.delete(app);
  }

  private windowsOf(app: string): ConcurrencyWindows {
    let w = this.windows.get(app);
    if (!w) {
      w = new ConcurrencyWindows(this.panicWindowS * 1000, this.stableWindowS * 1000);
      this.windows.set(app, w);
    }
    return w;
  }

  private assess(
    input: PassInput,
    scaled: AppMachine[],
    template: AppMachine,
    settings: ScalingSettings,
    counts: MachineCounts,
    panic: boolean,
  ): Assessment {
    const windows = this.windowsOf(input.app);
    const panicValue = windows.panic(input.nowMs);
    const stableValue = windows.stable(input.nowMs);
    const soft = settings.softLimit;
    const desiredPanic = Math.ceil(panicValue / soft);
    const desiredStable = Math.ceil(stableValue / soft);
    const { running } = counts;
    const min = settings.minMachinesRunning;
    const max = settings.maxMachinesRunning;
    let desired = running;
    let reason = "";
    if (desiredPanic > running) {
      desired = desiredPanic;
      reason = `${panic ? "panic" : "scale up"}: max ${fmt(panicValue)} ${settings.type} over ${this.panicWindowS} s / soft_limit ${soft} = ${desiredPanic} > ${running} running`;
    } else if (!panic && Math.max(desiredStable, desiredPanic) < running) {
      // Never below what the panic window's peak needs: that would be undone by the next scale-up.
      desired = Math.max(desiredStable, desiredPanic);
      reason =
        desiredStable >= desiredPanic
          ? `scale down: mean ${fmt(stableValue)} ${settings.type} over ${this.stableWindowS} s / soft_limit ${soft} = ${desiredStable} < ${running} running`
          : `scale down: max ${fmt(panicValue)} ${settings.type} over ${this.panicWindowS} s / soft_limit ${soft} = ${desiredPanic} < ${running} running`;
    }
    if (desired < min) {
      reason = reason
        ? `${reason}; held at min_machines_running ${min}`
        : `${running} running < min_machines_running ${min}`;
      desired = min;
    } else if (desired > max) {
      reason = reason
        ? `${reason}; capped at max_machines_running ${max}`
        : `${running} running > max_machines_running ${max}`;
      desired = max;
    }
    if (panic && desired < running) {
      desired = running;
      reason = "";
    }
    if (desired === running) reason = "";
    return {
      settings,
      template,
      running,
      sleeping: counts.sleeping,
      panicConcurrency: panicValue,
      stableConcurrency: stableValue,
      panic,
      desired,
      reason,
      busiestRegion: regionRanking(scaled, template, input.load, counts)[0] ?? template.region,
    };
  }

  private scaleUp(
    input: PassInput,
    scaled: AppMachine[],
    a: Assessment,
    counts: MachineCounts,
  ): DecideScale["actions"] {
    if (!a.settings.autostart) return [];
    // A machine being drained still runs: keeping it (the executor's re-check) beats a cold start.
    const need = a.desired - a.running - counts.draining;
    if (need <= 0) return [];
    const ranking = regionRanking(scaled, a.template, input.load, counts);
    const rank = (region: string) => {
      const i = ranking.indexOf(region);
      return i < 0 ? ranking.length : i;
    };
    const sleepers = scaled
      .filter((m) => (m.status === "stopped" || m.status === "suspended") && !counts.busy.has(m.machineId))
      .sort(
        (x, y) =>
          rank(x.region) - rank(y.region) ||
          Number(y.status === "suspended") - Number(x.status === "suspended") ||
          y.createdSeq - x.createdSeq,
      );
    const actions: DecideScale["actions"] = sleepers
      .slice(0, need)
      .map((m) => ({ kind: "start", machineId: m.machineId, region: m.region }));
    // A machine on its way to stopped or suspended (stopped by someone else) can be started on a later
    // pass: a clone made now for the same load would be one machine too many.
    const settling = scaled.filter(
      (m) => (m.status === "stopping" || m.status === "suspending") && !counts.busy.has(m.machineId),
    ).length;
    // Failed or cordoned machines count too: a clone that keeps failing must not multiply without end.
    const room = a.settings.maxMachinesRunning - scaled.length - counts.pendingCreates;
    // A clone of a machine on a volume would mount the same volume: only its own stopped machines start.
    const creates = onVolume(a.template) ? 0 : Math.min(need - actions.length - settling, Math.max(0, room));
    for (let i = 0; i < creates; i++)
      actions.push({ kind: "create", machineId: this.newMachineId(), region: a.busiestRegion });
    return actions;
  }
}

interface MachineCounts {
  running: number;
  sleeping: number;
  /** Running machines per region (pending creates in their decided region). */
  runningByRegion: Map<string, number>;
  /** Machines in an unfinished action, with its kind. */
  busy: Map<string, ScaleActionKind>;
  /** Unfinished creates whose machine is not in the stream yet. */
  pendingCreates: number;
  /** Machines in an unfinished stop or suspend that still run (cordoned, draining). */
  draining: number;
}

/**
 * Running: started or starting, not cordoned, not being stopped; plus machines being started or
 * created by an unfinished action (so the next pass does not ask for them again). Sleeping: stopped
 * or suspended.
 */
function countMachines(scaled: AppMachine[], scaling: ScalingState): MachineCounts {
  const busy = new Map<string, ScaleActionKind>();
  const actionRegion = new Map<string, string>();
  for (const { action } of unfinishedActions(scaling)) {
    busy.set(action.machineId, action.kind);
    actionRegion.set(action.machineId, action.region);
  }
  const runningByRegion = new Map<string, number>();
  const add = (region: string) => runningByRegion.set(region, (runningByRegion.get(region) ?? 0) + 1);
  let running = 0;
  let sleeping = 0;
  let draining = 0;
  const known = new Set<string>();
  for (const m of scaled) {
    known.add(m.machineId);
    const kind = busy.get(m.machineId);
    const isRunning =
      kind === "start" || kind === "create"
        ? true
        : kind === "stop" || kind === "suspend"
          ? false
          : RUNNING.has(m.status) && !m.cordoned;
    if (isRunning) {
      running++;
      add(m.region);
    } else if ((kind === "stop" || kind === "suspend") && (m.status === "started" || m.status === "starting"))
      draining++;
    if (m.status === "stopped" || m.status === "suspended") sleeping++;
  }
  let pendingCreates = 0;
  for (const [id, kind] of busy) {
    if (kind !== "create" || known.has(id)) continue;
    pendingCreates++;
    running++;
    add(actionRegion.get(id) ?? "");
  }
  return { running, sleeping, runningByRegion, busy, pendingCreates, draining };
}

/**
 * The app's regions, busiest first: load per running machine, from the machines' regions in the
 * samples (and a proxy's queued requests in its own region). Only regions where the app has
 * machines take part, so a proxy in a region without hosts for the app does not steer clones there.
 * Ties (and no load at all) put the template's region first.
 */
function regionRanking(
  scaled: AppMachine[],
  template: AppMachine,
  load: AppLoad,
  counts: MachineCounts,
): string[] {
  const regions = new Set<string>([template.region, ...scaled.map((m) => m.region)]);
  const score = (r: string) => (load.regions.get(r) ?? 0) / Math.max(counts.runningByRegion.get(r) ?? 0, 1);
  return [...regions].sort(
    (x, y) =>
      score(y) - score(x) ||
      Number(y === template.region) - Number(x === template.region) ||
      x.localeCompare(y),
  );
}

/**
 * At most one machine per region per pass, so a region never loses all its capacity at once: each
 * region's least loaded started machine (ties: the newest), least loaded regions first. A machine that
 * started less than a stable window ago is not stopped: its load has not been measured over a whole
 * window yet, and a machine that was just started (by a deploy, a wake or a scale-up) stays up at least
 * that long, so a burst does not make machines flap.
 */
function scaleDown(
  input: PassInput,
  scaled: AppMachine[],
  a: Assessment,
  counts: MachineCounts,
  minUptimeMs: number,
): DecideScale["actions"] {
  const kind = a.settings.autostop;
  if (kind === "off") return [];
  const loadOf = (m: AppMachine) => input.load.machines.get(m.machineId) ?? 0;
  const better = (x: AppMachine, y: AppMachine) => loadOf(x) - loadOf(y) || y.createdSeq - x.createdSeq;
  const perRegion = new Map<string, AppMachine>();
  for (const m of scaled) {
    if (m.status !== "started" || m.cordoned || counts.busy.has(m.machineId)) continue;
    if (m.startedAtMs !== undefined && input.nowMs - m.startedAtMs < minUptimeMs) continue;
    const current = perRegion.get(m.region);
    if (!current || better(m, current) < 0) perRegion.set(m.region, m);
  }
  return [...perRegion.values()]
    .sort(better)
    .slice(0, a.running - a.desired)
    .map((m) => ({ kind, machineId: m.machineId, region: m.region }));
}

function fmt(n: number): string {
  return String(Math.round(n * 10) / 10);
}
