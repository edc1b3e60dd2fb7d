import { setTimeout as sleep } from "node:timers/promises";
import { durationToMs } from "@hangar/config";
import {
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  machineDecider,
  machinesStream,
  type ScaleAction,
  type ScaleDecision,
  unfinishedActions,
} from "@hangar/domain";
import { CommandHandler, type CommandResult, type EventStore, isDomainError } from "@hangar/eventstore";
import { CommandError, handleThenWait, type PlacedMachine, placeThenCreateMachine } from "@hangar/service";
import { type Context, type Logger, ROOT_CONTEXT, withSpan } from "@hangar/telemetry";
import type { NatsConnection } from "@nats-io/transport-node";
import { type Autoscaler, templateOf } from "./autoscaler.js";
import type { Fleet } from "./fleet.js";
import { DRAIN_POLL_MS, type LoadBoard } from "./load.js";
import type { ScalingLog } from "./scaling-log.js";

/** Default wait for proxies to drain a cordoned machine before it is stopped anyway (s). */
export const DEFAULT_DRAIN_TIMEOUT_S = 30;
/** Fly's default stop: SIGINT, then SIGKILL after 5 s. */
const DEFAULT_STOP_SIGNAL = "SIGINT";
const DEFAULT_STOP_TIMEOUT_S = 5;

/** A point in an action where a test can hold the executor (to kill the scheduler half-way). */
export type ExecutorStep = "action" | "create-machine" | "stop-machine";

/** The action an executor step belongs to. */
export interface ActionRef {
  app: string;
  decisionId: string;
  kind: ScaleAction["kind"];
  machineId: string;
}

export interface ExecutorHooks {
  /** Awaited before each step of an action. */
  beforeStep?(step: ExecutorStep, action: ActionRef): Promise<void> | void;
}

export interface ExecutorOptions {
  nc: NatsConnection;
  store: EventStore;
  fleet: Fleet;
  board: LoadBoard;
  autoscaler: Autoscaler;
  log: ScalingLog;
  logger: Logger;
  drainTimeoutMs?: number;
  /** How often a drain looks at the proxies' reports again (ms). */
  drainPollMs?: number;
  hooks?: ExecutorHooks;
  now?: () => number;
  /** Whether this scheduler may still act (its lease is held): a step is taken only while it is. */
  isHeld?: () => boolean;
}

/** The scheduler was stopped while an action ran; the next scheduler finishes it from the log. */
class StoppedError extends Error {
  override name = "StoppedError";
  readonly code = "stopped";
}

/**
 * Carries out every unfinished action of the SCALING log, whoever decided it: the ids are in the
 * log, so a scheduler restarted half-way finishes its predecessor's actions and creates no machine
 * twice (a create uses the decided machine id; CreateMachine's command id is `create-<machine id>`).
 * An action that fails for a passing reason (no placement answer, a lost connection) stays unfinished
 * and is tried again on a later pass.
 */
export class ScaleExecutor {
  private readonly machines: CommandHandler<MachineState, MachineCommand, MachineEvent>;
  private readonly inFlight = new Set<string>();
  private readonly abort = new AbortController();
  private readonly drainTimeoutMs: number;
  private readonly drainPollMs: number;
  private readonly now: () => number;
  /** The trace of each decision this process recorded, until its actions have run: their spans join it. */
  private readonly decisionTraces = new Map<string, Context>();

  constructor(private readonly opts: ExecutorOptions) {
    this.machines = new CommandHandler(opts.store, machinesStream, machineDecider);
    this.drainTimeoutMs = opts.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_S * 1000;
    this.drainPollMs = opts.drainPollMs ?? DRAIN_POLL_MS;
    this.now = opts.now ?? Date.now;
  }

  /** Actions being carried out now. */
  get running(): number {
    return this.inFlight.size;
  }

  /** Makes the actions of a decision children of `ctx` (the decision's span) when they run. */
  traceDecision(decisionId: string, ctx: Context): void {
    this.decisionTraces.set(decisionId, ctx);
  }

  /** Starts every unfinished action that is not already being carried out. */
  kick(): void {
    if (this.abort.signal.aborted || !(this.opts.isHeld?.() ?? true)) return;
    const { fleet } = this.opts;
    for (const app of fleet.scaledApps()) {
      for (const { decision, action } of unfinishedActions(fleet.scalingOf(app))) {
        const key = `${decision.decisionId}/${action.machineId}`;
        if (this.inFlight.has(key)) continue;
        this.inFlight.add(key);
        // An action of a decision recorded by another (or an earlier) scheduler starts a trace of its own.
        const parent = this.decisionTraces.get(decision.decisionId) ?? ROOT_CONTEXT;
        const attributes = {
          "hangar.app": app,
          "hangar.scaling.decision_id": decision.decisionId,
          "hangar.machine_id": action.machineId,
        };
        withSpan(`scale ${action.kind}`, { attributes }, () => this.execute(app, decision, action), parent)
          .catch((err: unknown) => {
            if (err instanceof StoppedError || this.abort.signal.aborted) return;
            this.opts.logger.warn(
              { err, app, decision: decision.decisionId, machine: action.machineId, kind: action.kind },
              "scale action failed for now; it is tried again on the next pass",
            );
          })
          .finally(() => {
            this.inFlight.delete(key);
            const prefix = `${decision.decisionId}/`;
            if (![...this.inFlight].some((k) => k.startsWith(prefix)))
              this.decisionTraces.delete(decision.decisionId);
          });
      }
    }
  }

  /** Stops taking steps; actions in progress end where they are and stay unfinished in the log. */
  stop(): void {
    this.abort.abort();
  }

  private async execute(app: string, decision: ScaleDecision, action: ScaleAction): Promise<void> {
    const ref: ActionRef = {
      app,
      decisionId: decision.decisionId,
      kind: action.kind,
      machineId: action.machineId,
    };
    await this.step("action", ref);
    if (!this.opts.fleet.appExists(app)) return this.finish(ref, "failed", `app ${app} no longer exists`);
    switch (action.kind) {
      case "start":
        return this.start(ref);
      case "create":
        return this.create(ref, action.region);
      case "stop":
      case "suspend":
        return this.stopOrSuspend(ref, action.kind);
    }
  }

  private async start(ref: ActionRef): Promise<void> {
    try {
      await this.run(ref, { type: "StartMachine", uncordon: true, nowMs: this.now() }, "start");
    } catch (err) {
      if (isDomainError(err)) return this.finish(ref, "failed", `start refused: ${err.message}`);
      throw err;
    }
    return this.finish(ref, "done", "start requested");
  }

  private async create(ref: ActionRef, region: string): Promise<void> {
    const { fleet } = this.opts;
    if (fleet.machine(ref.app, ref.machineId)) return this.finish(ref, "done", "machine exists");
    const template = templateOf(fleet.machinesOf(ref.app));
    if (!template) return this.finish(ref, "failed", "no machine with services left to clone");
    const config = JSON.parse(template.configJson) as Record<string, unknown> & {
      guest?: { cpus?: number; memory_mb?: number };
      metadata?: Record<string, string>;
    };
    config.metadata = { ...(config.metadata ?? {}), hangar_scale_decision: ref.decisionId };
    let created: PlacedMachine;
    try {
      // The decided machine id makes a second attempt get the same host and append nothing twice.
      created = await placeThenCreateMachine(
        { nc: this.opts.nc, machines: this.machines, view: fleet.machines },
        { app: ref.app, machineId: ref.machineId, region: region || template.region, config },
        { beforeCreate: () => this.step("create-machine", ref) },
      );
    } catch (err) {
      if (err instanceof CommandError && err.code === "insufficient_capacity")
        return this.finish(ref, "failed", err.message);
      if (isDomainError(err, "already_exists")) return this.finish(ref, "done", "machine exists");
      if (isDomainError(err)) return this.finish(ref, "failed", `create refused: ${err.message}`);
      throw err;
    }
    const { placed } = created;
    return this.finish(ref, "done", `created on host ${placed.host_id} in ${placed.region}`);
  }

  /**
   * Autostop: cordon (every proxy stops routing new requests to the machine once it folded the
   * cordon), wait until the proxies report nothing in flight on it, look again whether the app needs
   * it after all, then stop or suspend it and lift the cordon.
   */
  private async stopOrSuspend(ref: ActionRef, kind: "stop" | "suspend"): Promise<void> {
    const { fleet } = this.opts;
    let cordonSeq: number;
    try {
      // An already cordoned machine (a restarted scheduler) decides nothing: its last sequence is
      // at or after the cordon, which is all the drain needs.
      cordonSeq = (await this.run(ref, { type: "CordonMachine", nowMs: this.now() }, "cordon")).seq;
    } catch (err) {
      if (isDomainError(err)) return this.finish(ref, "failed", `cordon refused: ${err.message}`);
      throw err;
    }
    const drain = await this.drain(ref, cordonSeq);
    if (drain.keep) {
      await this.uncordon(ref);
      return this.finish(ref, "kept", `${drain.message}; ${drain.keep}`);
    }
    await this.step("stop-machine", ref);
    const machine = fleet.machine(ref.app, ref.machineId);
    try {
      if (machine && (machine.status === "started" || machine.status === "starting")) {
        const stop = stopConfigOf(machine.configJson);
        const command: MachineCommand =
          kind === "stop"
            ? { type: "StopMachine", signal: stop.signal, timeoutS: stop.timeoutS, nowMs: this.now() }
            : { type: "SuspendMachine", nowMs: this.now() };
        await this.run(ref, command, kind);
      }
    } catch (err) {
      if (!isDomainError(err)) throw err;
      await this.uncordon(ref);
      return this.finish(ref, "failed", `${drain.message}; ${kind} refused: ${err.message}`);
    }
    // A stopped machine takes no traffic anyway, and a later start must not find it cordoned.
    await this.uncordon(ref);
    const what = !machine
      ? "machine is gone"
      : machine.status === "started" || machine.status === "starting"
        ? `${kind} requested`
        : `machine was already ${machine.status}`;
    return this.finish(ref, "done", `${drain.message}; ${what}`);
  }

  /**
   * Waits until the proxies report the machine drained, or the drain timeout; says which in words.
   * Looks at every poll, and once more at the end, whether the app needs the machine after all
   * (`keep` says why): load that comes back during a drain keeps the machine instead of starting another.
   */
  private async drain(ref: ActionRef, cordonSeq: number): Promise<{ message: string; keep?: string }> {
    const started = this.now();
    for (;;) {
      this.checkStopped();
      const now = this.now();
      const status = this.opts.board.drainStatus(ref.app, ref.machineId, cordonSeq, now);
      const waited = now - started;
      const message = status.drained
        ? `drained in ${(waited / 1000).toFixed(1)} s`
        : waited >= this.drainTimeoutMs
          ? `drain timed out after ${Math.round(this.drainTimeoutMs / 1000)} s (waiting for proxies ${status.waitingFor.join(", ")})`
          : undefined;
      const keep = this.needed(ref, now);
      if (keep) return { message: message ?? `drain stopped after ${(waited / 1000).toFixed(1)} s`, keep };
      if (message) return { message };
      await sleep(this.drainPollMs, undefined, { signal: this.abort.signal }).catch(() => undefined);
    }
  }

  /** Why the app needs this machine (being stopped) after all, or undefined when it does not. */
  private needed(ref: ActionRef, now: number): string | undefined {
    const { fleet } = this.opts;
    const status = fleet.machine(ref.app, ref.machineId)?.status;
    // A machine already on its way down (stopped by a scheduler that died before recording it) is not
    // kept: keeping it would need a start, which is a scale-up's decision.
    if (status !== "started" && status !== "starting") return undefined;
    const a = this.opts.autoscaler.assessNow({
      app: ref.app,
      nowMs: now,
      machines: fleet.machinesOf(ref.app),
      scaling: fleet.scalingOf(ref.app),
      load: this.opts.board.appLoad(ref.app, now),
    });
    if (!a || a.desired <= a.running) return undefined;
    return `kept: the app needs ${a.desired} machines and ${a.running} others run`;
  }

  private async uncordon(ref: ActionRef): Promise<void> {
    try {
      await this.run(ref, { type: "UncordonMachine", nowMs: this.now() }, "uncordon");
    } catch (err) {
      // A destroyed machine needs no uncordon; a leased one keeps its cordon until its owner acts.
      if (!isDomainError(err)) throw err;
      this.opts.logger.warn({ err, app: ref.app, machine: ref.machineId }, "could not uncordon");
    }
  }

  /** Runs one step's command on the action's machine and waits until the fleet shows it. */
  private run(
    ref: ActionRef,
    command: MachineCommand,
    verb: string,
  ): Promise<CommandResult<MachineState, MachineEvent>> {
    this.checkStopped();
    return handleThenWait(
      this.machines,
      this.opts.fleet.machines,
      machineAggregateId(ref.app, ref.machineId),
      command,
      { commandId: `scale-${ref.decisionId}-${verb}-${ref.machineId}` },
    );
  }

  private async finish(ref: ActionRef, outcome: "done" | "kept" | "failed", message: string): Promise<void> {
    this.checkStopped();
    const recorded = await this.opts.log.finish(ref.app, {
      type: "FinishScaleAction",
      decisionId: ref.decisionId,
      machineId: ref.machineId,
      outcome,
      message,
      finishedAtMs: this.now(),
    });
    if (recorded)
      this.opts.logger.info(
        { app: ref.app, decision: ref.decisionId, machine: ref.machineId, kind: ref.kind, outcome, message },
        "scale action finished",
      );
  }

  private async step(step: ExecutorStep, ref: ActionRef): Promise<void> {
    this.checkStopped();
    await this.opts.hooks?.beforeStep?.(step, ref);
    this.checkStopped();
  }

  private checkStopped(): void {
    if (this.abort.signal.aborted) throw new StoppedError("the scheduler is stopping");
    if (!(this.opts.isHeld?.() ?? true)) throw new StoppedError("the scheduler lease is no longer held");
  }
}

/** The machine's stop signal and timeout, as the host agent would default them. */
function stopConfigOf(configJson: string): { signal: string; timeoutS: number } {
  let stop: { signal?: unknown; timeout?: unknown } | undefined;
  try {
    stop = (JSON.parse(configJson || "{}") as { stop_config?: typeof stop }).stop_config ?? undefined;
  } catch {
    stop = undefined;
  }
  const signal = typeof stop?.signal === "string" && stop.signal ? stop.signal : DEFAULT_STOP_SIGNAL;
  let timeoutS = DEFAULT_STOP_TIMEOUT_S;
  if (typeof stop?.timeout === "string" || typeof stop?.timeout === "number") {
    try {
      timeoutS = Math.max(1, Math.ceil(durationToMs(stop.timeout) / 1000));
    } catch {
      timeoutS = DEFAULT_STOP_TIMEOUT_S;
    }
  }
  return { signal, timeoutS };
}
