import type { EventStore } from "@hangar/eventstore";
import { type MachineChange, MachinesView } from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { AppMetrics } from "./app-metrics.js";
import { ConsumerLag } from "./consumer-lag.js";

export interface MonitorOptions {
  logger?: Logger;
  /** How often the machines' [[metrics]] are scraped (default 15 s). */
  appScrapeMs?: number;
  /** The largest metrics page taken from a machine (default 4 MiB). */
  appScrapeMaxBytes?: number;
}

/**
 * Machine-state metrics from the MACHINES stream: counts by app, region and state (from the whole
 * history, rebuilt at start), and — for changes seen live — transitions, starts and failed starts,
 * create-to-started latency and exits by code; plus the lag of every durable JetStream consumer.
 */
export class Monitor {
  private readonly createdAt = new Map<string, number>();
  /** The machines' own metrics (fly.toml [[metrics]]), scraped and served at /metrics/apps. */
  readonly appMetrics: AppMetrics;
  readonly textRoutes: Readonly<Record<string, () => string>>;

  private constructor(
    private readonly view: MachinesView,
    private readonly transitions: Counter,
    private readonly createToStarted: Histogram,
    private readonly exits: Counter,
    private readonly starts: Counter,
    private readonly lag: ConsumerLag,
    opts: MonitorOptions,
  ) {
    view.subscribe((c) => this.observe(c));
    this.appMetrics = new AppMetrics({
      machines: () => view.all(),
      ...(opts.appScrapeMs !== undefined ? { intervalMs: opts.appScrapeMs } : {}),
      ...(opts.appScrapeMaxBytes !== undefined ? { maxBytes: opts.appScrapeMaxBytes } : {}),
      ...(opts.logger ? { logger: opts.logger } : {}),
    });
    this.textRoutes = { "/metrics/apps": () => this.appMetrics.render() };
  }

  /** Rebuilds machine states from the stream and keeps the metrics in `registry` current. */
  static async start(store: EventStore, registry: Registry, opts: MonitorOptions = {}): Promise<Monitor> {
    const registers = [registry];
    const transitions = new Counter({
      name: "hangar_machine_transitions_total",
      help: "Machine state changes seen since this monitor started",
      labelNames: ["app", "from", "to"],
      registers,
    });
    const createToStarted = new Histogram({
      name: "hangar_machine_create_to_started_seconds",
      help: "From a machine's creation to its first start, by event times",
      labelNames: ["app", "region"],
      buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30],
      registers,
    });
    const exits = new Counter({
      name: "hangar_machine_exits_total",
      help: "Machine process exits seen since this monitor started, by exit code (unknown when no agent saw it)",
      labelNames: ["app", "code", "requested"],
      registers,
    });
    const starts = new Counter({
      name: "hangar_machine_starts_total",
      help: "Machine starts seen since this monitor started, by result (started, or failed: the host agent could not start it)",
      labelNames: ["app", "region", "result"],
      registers,
    });
    const lag = await ConsumerLag.start(store.jsm, registry, opts.logger ? { logger: opts.logger } : {});
    const view = MachinesView.create(store);
    const monitor = new Monitor(view, transitions, createToStarted, exits, starts, lag, opts);
    const machines = new Gauge({
      name: "hangar_machines",
      help: "Machines by app, region and state (destroyed ones included)",
      labelNames: ["app", "region", "state"],
      registers,
      collect() {
        this.reset();
        const counts = new Map<string, { app: string; region: string; state: string; n: number }>();
        for (const { state: m } of view.all()) {
          const key = `${m.app}\u0000${m.region}\u0000${m.status}`;
          const c = counts.get(key);
          if (c) c.n++;
          else counts.set(key, { app: m.app, region: m.region, state: m.status, n: 1 });
        }
        for (const c of counts.values()) this.set({ app: c.app, region: c.region, state: c.state }, c.n);
      },
    });
    void machines;
    await view.follow();
    await view.caughtUp;
    monitor.appMetrics.start();
    return monitor;
  }

  private observe(c: MachineChange): void {
    for (const r of c.events) {
      if (r.event.type === "MachineCreated") this.createdAt.set(c.aggregateId, r.timeUnixMs);
      if (r.event.type === "MachineStarted") {
        const created = this.createdAt.get(c.aggregateId);
        if (created !== undefined) {
          this.createdAt.delete(c.aggregateId);
          if (c.live && c.state.status !== "absent") {
            this.createToStarted.observe(
              { app: c.state.app, region: c.state.region },
              Math.max(0, r.timeUnixMs - created) / 1000,
            );
          }
        }
      }
      if (c.live && c.state.status !== "absent") {
        if (r.event.type === "MachineStarted")
          this.starts.inc({ app: c.state.app, region: c.state.region, result: "started" });
        if (r.event.type === "MachineStartFailed")
          this.starts.inc({ app: c.state.app, region: c.state.region, result: "failed" });
      }
      if (r.event.type === "MachineDestroyed") this.createdAt.delete(c.aggregateId);
      if (c.live && r.event.type === "MachineExited" && c.state.status !== "absent") {
        const d = r.event.data;
        this.exits.inc({
          app: c.state.app,
          code: d.codeUnknown ? "unknown" : String(d.exitCode ?? 0),
          requested: String(Boolean(d.requested)),
        });
      }
    }
    if (c.live && c.state.status !== "absent" && c.previous.status !== c.state.status) {
      this.transitions.inc({ app: c.state.app, from: c.previous.status, to: c.state.status });
    }
  }

  health() {
    return { ok: this.view.live, machines_known: this.view.size, last_seq: this.view.lastSeq };
  }

  async stop(): Promise<void> {
    await this.appMetrics.stop();
    await this.lag.stop();
    await this.view.stop();
  }
}
