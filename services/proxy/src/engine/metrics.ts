import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** The `app` label of requests that named no known app, so random Host headers add no series. */
export const UNROUTED_APP = "_unrouted";

const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx", "aborted"] as const;
const ABORTED = 5;

/** Why a request was sent again: to a second backend, or to a machine not listening yet. */
export type RetryReason = "connect_error" | "connect_refused" | "status_5xx";

/** How one wake-up (the start of one machine by a request) ended. */
export type WakeResult = "ready" | "refused" | "error" | "failed" | "timeout";

/**
 * How a machine's `fly-replay` ended: the request sent on, or refused because the header could not
 * be followed, it looped, its body was too large to keep, the app is not in the organization, or no
 * machine fits.
 */
export type ReplayResult =
  | "replayed"
  | "invalid"
  | "loop"
  | "body_too_large"
  | "app_not_found"
  | "no_machine";

/** One app's counts; plain numbers on the hot path, turned into samples when scraped. */
export class AppMetrics {
  readonly requests = [0, 0, 0, 0, 0, 0];
  readonly retries = { connect_error: 0, connect_refused: 0, status_5xx: 0 };
  readonly labels: { app: string };

  constructor(app: string) {
    this.labels = { app };
  }
}

/**
 * The proxy's Prometheus metrics: requests by app and status class, retries, upstream latency,
 * requests held per app, wake-ups by result, fly-replays by result.
 */
export class ProxyMetrics {
  private readonly apps = new Map<string, AppMetrics>();
  private readonly latency: Histogram<"app">;
  private readonly duration: Histogram<"app" | "status_class">;
  private readonly wakes: Counter<"app" | "result">;
  private readonly replays: Counter<"app" | "result">;

  /** `queued` lists the apps the proxy tracks with the requests each holds, read at scrape time. */
  constructor(registry: Registry, queued: () => Iterable<[app: string, queued: number]> = () => []) {
    const apps = this.apps;
    const registers = [registry];
    new Counter({
      name: "hangar_proxy_requests_total",
      help: "Requests answered by the edge proxy, by app and status class (aborted: client left first)",
      labelNames: ["app", "status_class"],
      registers,
      collect() {
        this.reset();
        for (const m of apps.values()) {
          m.requests.forEach((n, i) => {
            if (n > 0) this.inc({ app: m.labels.app, status_class: STATUS_CLASSES[i] }, n);
          });
        }
      },
    });
    new Counter({
      name: "hangar_proxy_retries_total",
      help: "Requests sent to a second backend, by app and reason",
      labelNames: ["app", "reason"],
      registers,
      collect() {
        this.reset();
        for (const m of apps.values()) {
          for (const [reason, n] of Object.entries(m.retries)) {
            if (n > 0) this.inc({ app: m.labels.app, reason }, n);
          }
        }
      },
    });
    this.latency = new Histogram({
      name: "hangar_proxy_upstream_response_seconds",
      help: "Time from sending a request to a machine to receiving its response headers",
      labelNames: ["app"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.duration = new Histogram({
      name: "hangar_proxy_request_duration_seconds",
      help: "Time from a request's arrival at the proxy to its end (answer sent or client gone), by app and status class; held and retried time included",
      labelNames: ["app", "status_class"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    new Gauge({
      name: "hangar_proxy_queued",
      help: "Requests the proxy holds for an app until a machine can take them (hard limit, wake-up)",
      labelNames: ["app"],
      registers,
      collect() {
        this.reset();
        for (const [app, n] of queued()) this.set({ app }, n);
      },
    });
    this.wakes = new Counter({
      name: "hangar_proxy_wakes_total",
      help: "Machines started by requests (autostart), by app and how the wake-up ended",
      labelNames: ["app", "result"],
      registers,
    });
    this.replays = new Counter({
      name: "hangar_proxy_replays_total",
      help: "Answers with fly-replay, by the app of the machine that gave them and what the proxy did (replayed, or why not)",
      labelNames: ["app", "result"],
      registers,
    });
  }

  /** Counts a machine's `fly-replay`, by the app of the machine that asked. */
  replay(app: string, result: ReplayResult): void {
    this.replays.inc({ app, result });
  }

  /** Counts a wake-up that ended. */
  wake(app: string, result: WakeResult): void {
    this.wakes.inc({ app, result });
  }

  /** The counters of `app`. */
  forApp(app: string): AppMetrics {
    let m = this.apps.get(app);
    if (m === undefined) {
      m = new AppMetrics(app);
      this.apps.set(app, m);
    }
    return m;
  }

  /**
   * Counts an answered request; `status` is undefined when the client left before the answer.
   * `seconds`, when given, is the request's whole time in the proxy.
   */
  request(m: AppMetrics, status: number | undefined, seconds?: number): void {
    const i = status === undefined ? ABORTED : Math.floor(status / 100) - 1;
    if (i < 0 || i > ABORTED) return;
    m.requests[i] = (m.requests[i] as number) + 1;
    if (seconds !== undefined)
      this.duration.observe({ app: m.labels.app, status_class: STATUS_CLASSES[i] as string }, seconds);
  }

  /** Counts a retry. */
  retry(m: AppMetrics, reason: RetryReason): void {
    m.retries[reason]++;
  }

  /** Records the time to response headers of one upstream attempt. */
  upstreamResponse(m: AppMetrics, seconds: number): void {
    this.latency.observe(m.labels, seconds);
  }
}
