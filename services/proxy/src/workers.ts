import cluster, { type Worker } from "node:cluster";
import type { Logger } from "@hangar/telemetry";
import {
  AggregatorRegistry,
  type MetricObjectWithValues,
  type MetricValue,
  type Registry,
} from "prom-client";
import type { LimitShare } from "./engine/backends.js";

/** The environment a worker is told its place by. */
const INDEX_ENV = "HANGAR_PROXY_WORKER_INDEX";
const COUNT_ENV = "HANGAR_PROXY_WORKER_COUNT";
/** How long the primary waits for a worker's metrics. */
const METRICS_TIMEOUT_MS = 2_000;

type Metrics = MetricObjectWithValues<MetricValue<string>>[];
type Message =
  | { hangar: "ready" }
  | { hangar: "metrics?"; id: number }
  | { hangar: "metrics"; id: number; metrics: Metrics };

/** This process's part of the machines' limits when it is a proxy worker; undefined otherwise. */
export function workerShare(): LimitShare | undefined {
  if (!cluster.isWorker) return undefined;
  return { index: Number(process.env[INDEX_ENV]), count: Number(process.env[COUNT_ENV]) };
}

/**
 * The primary of a proxy run as `count` workers (node:cluster): it forks them, each with its part of
 * the limits and its own proxy id, restarts one that dies, is healthy while all of them serve, and
 * serves on its /metrics the sum of theirs and its own. The workers listen on the proxy's port
 * through it (it accepts and hands the connections out).
 */
const RESTART_FIRST_MS = 100;
const RESTART_MAX_MS = 30_000;
const RESTART_RESET_MS = 10_000;

export class ProxyWorkers {
  private readonly ready = new Set<number>();
  private readonly workers = new Map<number, Worker>();
  private stopping = false;
  private nextId = 0;
  /** Exits in a row of each worker that died within RESTART_RESET_MS of its start, for the backoff. */
  private readonly quickExits = new Map<number, number>();
  private readonly restarts = new Set<NodeJS.Timeout>();

  constructor(
    private readonly count: number,
    private readonly proxyId: string,
    private readonly logger: Logger,
    /** Settings each worker is given besides the primary's environment (the master keys, taken out of it). */
    private readonly env: Record<string, string | undefined> = {},
  ) {
    for (let index = 0; index < count; index++) this.fork(index);
  }

  /** Whether every worker is up and serving. */
  get healthy(): boolean {
    return this.ready.size === this.count;
  }

  get readyCount(): number {
    return this.ready.size;
  }

  /** Makes `registry.metrics()` answer the sum of the primary's and every worker's metrics. */
  aggregate(registry: Registry): void {
    const own = registry.getMetricsAsJSON.bind(registry);
    registry.metrics = async () => {
      const all = await Promise.all([
        own() as Promise<Metrics>,
        ...[...this.workers.values()].map((w) => this.ask(w)),
      ]);
      return AggregatorRegistry.aggregate(all.filter((m): m is Metrics => m !== undefined)).metrics();
    };
  }

  /** Stops the workers (each finishes what it serves, as a lone proxy does on SIGTERM). */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.restarts) clearTimeout(timer);
    this.restarts.clear();
    await Promise.all(
      [...this.workers.values()].map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            w.once("exit", () => resolve());
            w.process.kill("SIGTERM");
          }),
      ),
    );
  }

  private fork(index: number): void {
    const forkedAt = Date.now();
    const worker = cluster.fork({
      ...this.env,
      [INDEX_ENV]: String(index),
      [COUNT_ENV]: String(this.count),
      HANGAR_PROXY_ID: `${this.proxyId}-w${index}`,
      // The primary serves /health and /metrics; a worker's own ops server takes any free port.
      HANGAR_PROXY_OPS_PORT: "0",
    });
    this.workers.set(index, worker);
    worker.on("message", (m: Message) => {
      if (m.hangar === "ready") this.ready.add(index);
    });
    worker.once("exit", (code, signal) => {
      this.ready.delete(index);
      if (this.workers.get(index) === worker) this.workers.delete(index);
      if (this.stopping) return;
      // A worker that dies as it starts (NATS unreachable, a bad setting) is started again after a
      // growing delay, not in a tight loop: 0.1 s, doubling to 30 s, reset by a run of 10 s or more.
      const quick = Date.now() - forkedAt < RESTART_RESET_MS ? (this.quickExits.get(index) ?? 0) + 1 : 0;
      this.quickExits.set(index, quick);
      const delayMs = quick === 0 ? 0 : Math.min(RESTART_MAX_MS, RESTART_FIRST_MS * 2 ** (quick - 1));
      this.logger.error(
        { worker: index, code, signal, restart_in_ms: delayMs },
        "proxy worker exited; starting it again",
      );
      const timer = setTimeout(() => {
        this.restarts.delete(timer);
        if (!this.stopping) this.fork(index);
      }, delayMs);
      this.restarts.add(timer);
    });
  }

  private ask(worker: Worker): Promise<Metrics | undefined> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(undefined), METRICS_TIMEOUT_MS);
      const onMessage = (m: Message) => {
        if (m.hangar === "metrics" && m.id === id) done(m.metrics);
      };
      const done = (metrics: Metrics | undefined) => {
        clearTimeout(timer);
        worker.off("message", onMessage);
        resolve(metrics);
      };
      worker.on("message", onMessage);
      if (!worker.isConnected()) return done(undefined);
      worker.send({ hangar: "metrics?", id } satisfies Message);
    });
  }
}

/** In a worker: tells the primary it serves, and answers its requests for metrics. */
export function serveAsWorker(registry: Registry): void {
  process.on("message", (m: Message) => {
    if (m.hangar !== "metrics?") return;
    void (registry.getMetricsAsJSON() as Promise<Metrics>).then((metrics) =>
      process.send?.({ hangar: "metrics", id: m.id, metrics } satisfies Message),
    );
  });
  process.send?.({ hangar: "ready" } satisfies Message);
}
