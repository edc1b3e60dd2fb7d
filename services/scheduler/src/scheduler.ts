import { EventStore } from "@hangar/eventstore";
import type { HealthReport } from "@hangar/service";
import { subjects } from "@hangar/service";
import { context, createLogger, type Logger, SpanStatusCode, withSpan } from "@hangar/telemetry";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { Counter, Gauge, Registry } from "prom-client";
import {
  Autoscaler,
  DEFAULT_PANIC_WINDOW_S,
  DEFAULT_STABLE_WINDOW_S,
  type PassResult,
} from "./autoscaler.js";
import { decisionCause } from "./decision-reason.js";
import { DEFAULT_DRAIN_TIMEOUT_S, type ExecutorHooks, ScaleExecutor } from "./executor.js";
import { Fleet } from "./fleet.js";
import { LoadBoard, PROXY_LIVE_MS, parseLoadSample, parseProxyHeartbeat } from "./load.js";
import { ReleaseOrchestrator } from "./releases/orchestrator.js";
import { ScalingLog } from "./scaling-log.js";

export interface SchedulerOptions {
  /** The connection to use; it stays open after stop (it belongs to the caller). */
  nc: NatsConnection;
  /** An event store on `nc`; one is made when absent (and closed on stop). */
  store?: EventStore;
  logger?: Logger;
  /** Where the scheduler's metrics go (a new registry when absent). */
  registry?: Registry;
  /** Panic window (default 6 s): its maximum concurrency scales up at once. */
  panicWindowS?: number;
  /** Stable window (default 60 s): its mean concurrency scales down, and panic lasts at least this long. */
  stableWindowS?: number;
  /** How long a cordoned machine may take to drain before it is stopped anyway (default 30 s). */
  drainTimeoutS?: number;
  /** Time between passes (default 1000 ms). */
  passIntervalMs?: number;
  /** No decision until proxies had time to report after start (default the proxy live window, 3 s). */
  warmupMs?: number;
  /** After a decision with a failed action, no new decision for the app for this long (default 10 s). */
  failureBackoffMs?: number;
  /** The region of a release's machines when neither its config nor the app's machines name one. */
  defaultRegion?: string;
  /** Test seams: hold the executor at a step. */
  hooks?: ExecutorHooks;
  /**
   * Whether this process may act now (the leader passes its lease's isHeld): checked before each
   * pass, before a decision is recorded and before each step of an action, so a scheduler whose
   * lease went while it started or acted does nothing more even before it is stopped. Default: always.
   */
  isHeld?: () => boolean;
}

/** A running scheduler. */
export interface RunningScheduler {
  registry: Registry;
  health(): HealthReport;
  /** Runs one pass now (passes also run on their own timer). */
  pass(): Promise<void>;
  /** Stops passes and actions (unfinished actions stay in the log for the next scheduler), and unregisters its metrics. */
  stop(): Promise<void>;
}

/**
 * Starts the autoscaler: rebuilds APPS, MACHINES and SCALING from the log, follows proxies' load
 * samples and heartbeats, decides once a pass per app, and carries out every unfinished action of
 * the SCALING log. Run one scheduler at a time; a second one is safe (its decisions lose the
 * expected-sequence race or name machines already in an action) but only adds conflicts.
 */
export async function startScheduler(opts: SchedulerOptions): Promise<RunningScheduler> {
  const { nc } = opts;
  const logger = opts.logger ?? createLogger("scheduler");
  const ownStore = opts.store === undefined;
  const store = opts.store ?? (await EventStore.connect(nc));
  const registry = opts.registry ?? new Registry();
  const metrics = schedulerMetrics(registry);
  const board = new LoadBoard();
  const autoscaler = new Autoscaler({
    panicWindowS: opts.panicWindowS ?? DEFAULT_PANIC_WINDOW_S,
    stableWindowS: opts.stableWindowS ?? DEFAULT_STABLE_WINDOW_S,
    warmupMs: opts.warmupMs ?? PROXY_LIVE_MS,
    ...(opts.failureBackoffMs !== undefined ? { failureBackoffMs: opts.failureBackoffMs } : {}),
  });
  const decoder = new TextDecoder();
  const subs: Subscription[] = [];
  // Load reports are taken from the start, so the windows fill while the streams replay.
  subs.push(
    nc.subscribe(subjects.loadAll, {
      callback: (err, msg) => {
        if (err) return;
        const s = parseLoadSample(parseJson(decoder.decode(msg.data)));
        if (s) board.sample(s, Date.now());
      },
    }),
    nc.subscribe(subjects.proxyHeartbeatAll, {
      callback: (err, msg) => {
        if (err) return;
        const hb = parseProxyHeartbeat(parseJson(decoder.decode(msg.data)));
        if (hb) board.heartbeat(hb, Date.now());
      },
    }),
  );
  let fleet: Fleet;
  try {
    fleet = await Fleet.start(store);
  } catch (err) {
    // A failed start leaves nothing behind, so the next attempt in this process can register its
    // metrics and subscribe again.
    for (const s of subs) s.unsubscribe();
    if (ownStore) store.close();
    for (const name of SCHEDULER_METRICS) registry.removeSingleMetric(name);
    throw err;
  }
  const isHeld = opts.isHeld ?? (() => true);
  let releases: ReleaseOrchestrator;
  try {
    releases = await ReleaseOrchestrator.start({
      nc,
      store,
      fleet,
      board,
      logger,
      isHeld,
      defaultRegion: opts.defaultRegion ?? "local",
      drainTimeoutMs: (opts.drainTimeoutS ?? DEFAULT_DRAIN_TIMEOUT_S) * 1000,
    });
  } catch (err) {
    for (const s of subs) s.unsubscribe();
    await fleet.stop().catch(() => undefined);
    if (ownStore) store.close();
    for (const name of SCHEDULER_METRICS) registry.removeSingleMetric(name);
    throw err;
  }
  const log = new ScalingLog(store, fleet.scaling, undefined, isHeld);
  const executor = new ScaleExecutor({
    nc,
    store,
    fleet,
    board,
    autoscaler,
    log,
    logger,
    drainTimeoutMs: (opts.drainTimeoutS ?? DEFAULT_DRAIN_TIMEOUT_S) * 1000,
    isHeld,
    ...(opts.hooks ? { hooks: opts.hooks } : {}),
  });

  let stopped = false;
  let stopping: Promise<void> | undefined;
  let passing: Promise<void> | undefined;
  let lastPassMs = 0;
  const known = new Set<string>();

  async function passApp(app: string, nowMs: number): Promise<void> {
    // While a release rolls out, the orchestrator sets the app's machines: no scaling decision meanwhile.
    if (releases.deploying(app)) return;
    const scalingSeq = fleet.scaling.seqOf(app);
    const result = autoscaler.pass({
      app,
      nowMs,
      machines: fleet.machinesOf(app),
      scaling: fleet.scalingOf(app),
      load: board.appLoad(app, nowMs),
    });
    observe(app, result);
    const commands = [
      ...(result.panicChange ? [result.panicChange] : []),
      ...(result.decision ? [result.decision] : []),
    ];
    if (commands.length === 0) return;
    const commandId = result.decision?.decisionId ?? `panic-${app}-${nowMs}`;
    const record = () =>
      log.record(app, commands, commandId, scalingSeq).catch((err: unknown) => {
        // Refused by the decider: a machine got into another scheduler's action since we looked.
        logger.warn({ err, app }, "decision not recorded; the next pass decides again");
        return false;
      });
    const decided = result.decision;
    // A trace per decision: its record here, then its actions (the executor's spans) under it.
    const recorded = decided
      ? await withSpan(
          "scaling decision",
          {
            root: true,
            attributes: {
              "hangar.app": app,
              "hangar.scaling.decision_id": decided.decisionId,
              "hangar.scaling.current": decided.current,
              "hangar.scaling.desired": decided.desired,
              "hangar.scaling.reason": decided.reason,
              "hangar.scaling.actions": decided.actions.map((a) => `${a.kind} ${a.machineId}`),
            },
          },
          async (span) => {
            const ok = await record();
            if (ok) executor.traceDecision(decided.decisionId, context.active());
            else span.setStatus({ code: SpanStatusCode.ERROR, message: "not recorded: the log moved on" });
            return ok;
          },
        )
      : await record();
    if (!recorded) return;
    if (result.panicChange)
      logger.info({ app, panic: result.panicChange.panic, reason: result.panicChange.reason }, "panic mode");
    const d = result.decision;
    if (d) {
      metrics.decisions.inc({
        app,
        direction: d.desired > d.current ? "up" : "down",
        reason: decisionCause(d.reason),
      });
      logger.info(
        {
          app,
          decision: d.decisionId,
          current: d.current,
          desired: d.desired,
          actions: d.actions.map((a) => `${a.kind} ${a.machineId} (${a.region})`),
        },
        d.reason,
      );
    }
  }

  function observe(app: string, result: PassResult): void {
    const a = result.assessment;
    if (!a) return;
    metrics.desired.set({ app }, a.desired);
    metrics.concurrency.set({ app, window: "panic" }, a.panicConcurrency);
    metrics.concurrency.set({ app, window: "stable" }, a.stableConcurrency);
    if (result.held && a.desired !== a.running)
      logger.debug({ app, desired: a.desired, running: a.running, held: result.held }, "no decision");
  }

  async function runPass(): Promise<void> {
    const nowMs = Date.now();
    lastPassMs = nowMs;
    board.prune(nowMs);
    const apps = fleet.appNames();
    for (const app of apps) {
      if (stopped || !isHeld()) return;
      known.add(app);
      try {
        await passApp(app, nowMs);
      } catch (err) {
        logger.error({ err, app }, "pass failed for app");
      }
    }
    const current = new Set(apps);
    for (const app of known) {
      if (current.has(app)) continue;
      known.delete(app);
      autoscaler.forget(app);
      metrics.desired.remove({ app });
      metrics.concurrency.remove({ app, window: "panic" });
      metrics.concurrency.remove({ app, window: "stable" });
    }
    executor.kick();
    releases.kick();
  }

  function pass(): Promise<void> {
    if (stopped || !isHeld()) return Promise.resolve();
    // One pass at a time: a slow append delays the next pass instead of overlapping it.
    passing ??= runPass().finally(() => {
      passing = undefined;
    });
    return passing;
  }

  const passIntervalMs = opts.passIntervalMs ?? 1000;
  const timer = setInterval(() => {
    pass().catch((err: unknown) => logger.error({ err }, "pass failed"));
  }, passIntervalMs);
  const running: RunningScheduler = {
    registry,
    pass,
    health: () => ({
      ok: !stopped && fleet.live && Date.now() - lastPassMs < Math.max(10_000, passIntervalMs * 5),
      apps: known.size,
      proxies: board.liveProxies(Date.now()).length,
      actions_in_progress: executor.running,
      panic_window_s: autoscaler.panicWindowS,
      stable_window_s: autoscaler.stableWindowS,
    }),
    stop() {
      // Every caller waits for the one stop: it acts no more from the first call on.
      stopping ??= (async () => {
        stopped = true;
        clearInterval(timer);
        executor.stop();
        for (const s of subs) s.unsubscribe();
        await passing?.catch(() => undefined);
        await releases.stop();
        await fleet.stop();
        if (ownStore) store.close();
        // A scheduler started again in this process (a standby that takes the lease back) registers them anew.
        for (const name of SCHEDULER_METRICS) registry.removeSingleMetric(name);
      })();
      return stopping;
    },
  };
  try {
    await pass();
  } catch (err) {
    await running.stop();
    throw err;
  }
  logger.info(
    { panic_window_s: autoscaler.panicWindowS, stable_window_s: autoscaler.stableWindowS },
    "scheduler caught up with the log",
  );
  return running;
}

const SCHEDULER_METRICS = [
  "hangar_scheduler_decisions_total",
  "hangar_scheduler_desired_machines",
  "hangar_scheduler_concurrency",
] as const;

function schedulerMetrics(registry: Registry) {
  return {
    decisions: new Counter({
      name: SCHEDULER_METRICS[0],
      help: "Scaling decisions recorded by this scheduler, by app, direction (up or down) and reason (panic, scale_up, scale_down, below_min, above_max)",
      labelNames: ["app", "direction", "reason"],
      registers: [registry],
    }),
    desired: new Gauge({
      name: SCHEDULER_METRICS[1],
      help: "Machines the autoscaler wants running for the app, as of its last pass",
      labelNames: ["app"],
      registers: [registry],
    }),
    concurrency: new Gauge({
      name: SCHEDULER_METRICS[2],
      help: "The app's concurrency over the panic window (max) and the stable window (mean)",
      labelNames: ["app", "window"],
      registers: [registry],
    }),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
