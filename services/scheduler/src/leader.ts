import { setTimeout as sleep } from "node:timers/promises";
import { acquireLease, type Lease } from "@hangar/lease";
import type { HealthReport } from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { Gauge, Registry } from "prom-client";
import { type RunningScheduler, type SchedulerOptions, startScheduler } from "./scheduler.js";

/** The lease (libs/lease, bucket hangar-leases) whose holder is the platform's one active autoscaler. */
export const SCHEDULER_LEASE = "scheduler";
/** Default lease time: a killed leader is replaced within about 4/3 of it. */
export const DEFAULT_LEASE_TTL_MS = 3_000;
/** How long a holder whose scheduler could not start waits before it tries again. */
const RETRY_START_MS = 1_000;
/** Failed starts in a row after which a holder gives the lease up, so another replica can try. */
export const MAX_FAILED_STARTS = 3;

export interface LeaderOptions extends SchedulerOptions {
  /** Unique per live process (`<hostname>/<pid>`). */
  holder: string;
  /** The lease's time to live (default 3 s); renewed every third of it. */
  leaseTtlMs?: number;
  /** Replicas of the leases bucket when this call creates it. */
  replicas?: number;
  /** The lease's name; a test's own when several test platforms share one NATS. */
  leaseName?: string;
}

/** A scheduler process: active while it holds the lease, standing by (healthy, idle) otherwise. */
export interface LeasedScheduler {
  /** Whether this process decides and acts now. */
  active(): boolean;
  /** The active scheduler, while there is one (tests run a pass with it). */
  current(): RunningScheduler | undefined;
  health(): HealthReport;
  /** Stops the scheduler and gives up the lease, so a standby takes over at once. */
  stop(): Promise<void>;
}

/**
 * Runs the autoscaler only while this process holds the `scheduler` lease: of several replicas one
 * decides and carries out actions, the others stand by and take over when its lease lapses (a killed
 * leader: within the lease time and a third; a clean stop releases it at once).
 *
 * A holder that loses the lease (its renewals did not reach NATS in time: a partition, a stall) stops
 * at once: no new pass, no new step of an action. A step whose command was already sent may still land;
 * the new leader finishes the same actions from the SCALING log, and every step is idempotent (a
 * create uses the decided machine id, each command its own id, a finish is recorded once), and a
 * decision is appended on the exact version of the app's log it read, so a stale leader's decision
 * loses to the new leader's.
 */
export async function runSchedulerUnderLease(opts: LeaderOptions): Promise<LeasedScheduler> {
  const logger = opts.logger ?? createLogger("scheduler");
  const registry = opts.registry ?? new Registry();
  const leader = new Gauge({
    name: "hangar_scheduler_leader",
    help: "1 while this scheduler holds the scheduler lease and acts, 0 while it stands by",
    registers: [registry],
  });
  leader.set(0);
  let scheduler: RunningScheduler | undefined;
  let stopped = false;
  let lease: Lease | undefined;
  let since = Date.now();
  // Starts and stops run one after another, in the order the lease's changes came.
  let turn: Promise<void> = Promise.resolve();
  const next = (work: () => Promise<void>) => {
    turn = turn.then(work).catch((err: unknown) => logger.error({ err }, "scheduler lease change failed"));
    return turn;
  };
  const held = () => lease?.isHeld() ?? false;

  const ttlMs = opts.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  const become = async () => {
    let failed = 0;
    while (!stopped && !scheduler && held()) {
      try {
        scheduler = await startScheduler({ ...opts, logger, registry, isHeld: held });
        leader.set(1);
        since = Date.now();
        logger.info({ holder: opts.holder }, "scheduler lease held: active");
      } catch (err) {
        failed++;
        if (failed >= MAX_FAILED_STARTS) {
          // A holder that cannot start must not keep the lease renewed and block a replica that can:
          // it gives it up, stands aside a lease time (a standby takes it meanwhile), then asks again.
          logger.error({ err, failed }, "active scheduler could not start; giving the lease up");
          await lease?.release();
          await sleep(ttlMs);
          if (!stopped) lease = await acquire();
          return;
        }
        logger.error({ err, failed }, "active scheduler could not start; trying again");
        await sleep(RETRY_START_MS);
      }
    }
    // The lease went while it started: stand by again.
    if (scheduler && (stopped || !held())) await standBy();
  };
  const standBy = async () => {
    const s = scheduler;
    scheduler = undefined;
    leader.set(0);
    since = Date.now();
    await s?.stop();
  };

  const acquire = () =>
    acquireLease(opts.nc, {
      name: opts.leaseName ?? SCHEDULER_LEASE,
      holder: opts.holder,
      ttlMs,
      ...(opts.replicas === undefined ? {} : { replicas: opts.replicas }),
      onAcquired: () => void next(become),
      onLost: (reason) => {
        logger.warn({ reason }, "scheduler lease lost: standing by");
        // Stop acting now, before the queue gets to it: no pass, no new step from here on.
        void scheduler?.stop();
        void next(standBy);
      },
      onError: (err) => logger.warn({ err: String(err) }, "scheduler lease: NATS KV call failed"),
    });
  lease = await acquire();
  if (lease.isHeld()) await next(become);
  else logger.info({ holder: opts.holder }, "scheduler lease held by another: standing by");

  return {
    active: () => held() && scheduler !== undefined,
    current: () => scheduler,
    health: () => leaderHealth({ held: held(), scheduler, stopped, since }),
    async stop() {
      stopped = true;
      await next(standBy);
      await lease?.release();
    },
  };
}

/** What a leased scheduler is now: `active` (holds the lease, started), `starting` (holds it, replays the log) or `standby`. */
export type LeaderRole = "active" | "starting" | "standby";

/**
 * A leased scheduler's /health: its role from the lease and the start's state, not from whether a
 * scheduler object exists (one that lost the lease and is being stopped is a standby, and a healthy
 * one: a hand-over is no failure). Only an active scheduler reports its own health.
 */
export function leaderHealth(s: {
  held: boolean;
  scheduler: { health(): HealthReport } | undefined;
  stopped: boolean;
  since: number;
}): HealthReport & { role: LeaderRole } {
  const since = new Date(s.since).toISOString();
  if (s.held && s.scheduler) return { ...s.scheduler.health(), role: "active", since };
  // A standby or a holder still starting is healthy: ready to take over, or taking over.
  return { ok: !s.stopped, role: s.held ? "starting" : "standby", since };
}
