import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { type LoadSample, type ProxyHeartbeat, subjects } from "@hangar/service";
import type { NatsConnection } from "@nats-io/transport-node";
import type { ProxyStats } from "./engine/mod.js";

/** How long an app keeps being sampled after its last activity, so subscribers see its load end. */
export const ACTIVE_WINDOW_MS = 60_000;

/** How soon an early round (`soon`) goes out: the changes of one moment (ten cordons) share it. */
export const SOON_MS = 50;

export interface LoadPublisherOptions {
  nc: NatsConnection;
  proxyId: string;
  /** The proxy's region. */
  region: string;
  /** The proxy's load now (EdgeProxy.stats). */
  stats(): ProxyStats;
  /** Default 1000. */
  intervalMs?: number;
  /** Default ACTIVE_WINDOW_MS. */
  activeWindowMs?: number;
  /** Wall clock (ms since the epoch) for `ts`. Default Date.now. */
  now?: () => number;
}

/** This proxy's id: the configured one (HANGAR_PROXY_ID), or `<hostname>-<pid>-<random>` (unique across restarts). */
export function proxyIdOf(configured: string | undefined): string {
  return configured || `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

/**
 * Publishes, every second on core NATS, a LoadSample on `load.<app>` for each app that had anything
 * in flight or held in the last minute (zero samples included, so the end of the load is seen), and
 * a ProxyHeartbeat naming those apps and the MACHINES sequence the proxy has folded; and a round
 * more when asked (`soon`).
 */
export class LoadPublisher {
  private readonly lastActive = new Map<string, number>();
  private readonly lastReceived = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private early: NodeJS.Timeout | undefined;
  /** The apps the early round reports (`soon`); the regular rounds report every active app. */
  private readonly soonApps = new Set<string>();
  private readonly window: number;
  private readonly now: () => number;

  private constructor(private readonly opts: LoadPublisherOptions) {
    this.window = opts.activeWindowMs ?? ACTIVE_WINDOW_MS;
    this.now = opts.now ?? Date.now;
    this.timer = setInterval(() => this.tick(), opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  /** Starts publishing; the first samples go out after one interval. */
  static start(opts: LoadPublisherOptions): LoadPublisher {
    return new LoadPublisher(opts);
  }

  /**
   * Takes and publishes one round of samples and the heartbeat (the timer calls it). With `only`, the
   * samples of those apps alone (an early round's); the heartbeat always.
   */
  tick(only?: ReadonlySet<string>): void {
    const { nc, proxyId, region } = this.opts;
    const stats = this.opts.stats();
    const ts = this.now();
    const byApp = new Map(stats.apps.map((a) => [a.app, a]));
    for (const a of stats.apps) {
      const before = this.lastReceived.get(a.app);
      this.lastReceived.set(a.app, a.received);
      // A request that began and ended between two samples still counts as activity.
      const received = before === undefined ? a.received > 0 : before !== a.received;
      if (a.inFlight > 0 || a.queued > 0 || received) this.lastActive.set(a.app, ts);
    }
    for (const app of this.lastReceived.keys()) if (!byApp.has(app)) this.lastReceived.delete(app);

    const apps: string[] = [];
    for (const [app, at] of this.lastActive) {
      if (ts - at > this.window) {
        this.lastActive.delete(app);
        continue;
      }
      apps.push(app);
      if (only !== undefined && !only.has(app)) continue;
      const a = byApp.get(app);
      const sample: LoadSample = {
        proxy_id: proxyId,
        region,
        app,
        ts,
        machines_seq: stats.machinesSeq,
        concurrency: a?.inFlight ?? 0,
        queued: a?.queued ?? 0,
        machines: (a?.backends ?? []).map((b) => ({
          machine_id: b.machineId,
          region: b.region ?? "",
          concurrency: b.inFlight,
        })),
      };
      nc.publish(subjects.load(app), JSON.stringify(sample));
    }
    const heartbeat: ProxyHeartbeat = {
      proxy_id: proxyId,
      region,
      ts,
      machines_seq: stats.machinesSeq,
      apps,
    };
    nc.publish(subjects.proxyHeartbeat(proxyId), JSON.stringify(heartbeat));
  }

  /**
   * Publishes `app`'s sample, and the heartbeat, within SOON_MS besides the regular rounds, once however
   * often it is asked before then (the apps asked for meanwhile share that round): a route change (a
   * machine cordoned) or a drained machine is reported without waiting for the next second, so a
   * release's drain ends as soon as the proxies are done. Only those apps' samples: a proxy whose
   * routes churn sends a few small messages more, not every active app's sample twenty times a second.
   */
  soon(app: string): void {
    this.soonApps.add(app);
    if (this.early) return;
    this.early = setTimeout(() => {
      this.early = undefined;
      const apps = new Set(this.soonApps);
      this.soonApps.clear();
      this.tick(apps);
    }, SOON_MS);
    this.early.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.early);
    this.early = undefined;
  }
}
