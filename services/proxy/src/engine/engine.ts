import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { type Logger, type Span, SpanStatusCode, withSpan } from "@hangar/telemetry";
import type { Registry } from "prom-client";
import { AppState, BackendPool, type BackendState, type LimitShare, type Wake } from "./backends.js";
import { pickBackend } from "./balancer.js";
import { type Forwarding, viaFor } from "./headers.js";
import type { Held } from "./held.js";
import { appFromHost, normalizeDomains } from "./host.js";
import { type AppMetrics, ProxyMetrics, UNROUTED_APP, type WakeResult } from "./metrics.js";
import type { QueueEntry } from "./queue.js";
import type { Refusal } from "./refusal.js";
import { ulid } from "./request-id.js";
import type { RouteTable, SleepingMachine } from "./route-table.js";
import { WakeRefusedError, type Waker, wakeOrder } from "./waker.js";

/** Seconds a client is told to wait when an app has no machine to serve it. */
const NO_MACHINE_RETRY_AFTER_S = 1;

/** How long a machine whose start was refused is not asked again by this proxy. */
const REFUSED_WAKE_MS = 5_000;

/** What the request and upgrade paths share: routing, pools, metrics, clocks. */
export interface EngineOptions {
  routes: RouteTable;
  domains: readonly string[];
  region: string | undefined;
  maxSockets: number;
  logger: Logger;
  registry: Registry | undefined;
  /** Starts sleeping machines for requests (autostart); none: requests never wake a machine. */
  waker: Waker | undefined;
  /** Most requests held per app. */
  queueMax: number;
  /** How long a request waits for a machine under its hard limit. */
  queueTimeoutMs: number;
  /** How long a request waits for a machine being started. */
  wakeTimeoutMs: number;
  /** This worker's part of the machines' limits; none: all of them. */
  share?: LimitShare;
  /** Told the app whose backend out of service has just finished its last request. */
  onDrained?: (app: string) => void;
}

/** The proxy's shared state; one per proxy server. */
export class ProxyEngine {
  readonly pool: BackendPool;
  readonly domains: readonly string[];
  readonly region: string | undefined;
  readonly logger: Logger;
  readonly metrics: ProxyMetrics | undefined;
  /** Upgraded connections (and upgrades held), closed with the proxy. */
  readonly tunnels = new Set<Duplex>();
  readonly random: () => number = Math.random;
  readonly now: () => number = () => performance.now();
  private readonly idSuffix: string;
  private readonly waker: Waker | undefined;
  private readonly queueMax: number;
  private readonly queueTimeoutMs: number;
  private readonly wakeTimeoutMs: number;
  private readonly unsubscribe: () => void;

  constructor(opts: EngineOptions) {
    const onDrained = opts.onDrained;
    this.pool = new BackendPool(
      opts.routes,
      opts.maxSockets,
      (app) => this.pump(app),
      opts.share,
      onDrained ? (app) => onDrained(app.app) : undefined,
    );
    this.domains = normalizeDomains(opts.domains);
    this.region = opts.region;
    this.logger = opts.logger;
    this.metrics = opts.registry ? new ProxyMetrics(opts.registry, () => this.queuedByApp()) : undefined;
    this.waker = opts.waker;
    this.queueMax = opts.queueMax;
    this.queueTimeoutMs = opts.queueTimeoutMs;
    this.wakeTimeoutMs = opts.wakeTimeoutMs;
    // Held requests go on the moment a machine becomes routable, without polling the table.
    this.unsubscribe = opts.routes.onChange?.((app) => this.routeChanged(app)) ?? (() => {});
    // Like Fly's, ids name the region that accepted the request.
    this.idSuffix = opts.region === undefined ? "" : `-${opts.region}`;
  }

  /** What the proxy tells the machine about `req`, under a new request id. */
  forwarding(req: IncomingMessage): Forwarding {
    const socket = req.socket;
    return {
      clientIp: clientIp(socket.remoteAddress),
      localPort: String(socket.localPort),
      requestId: ulid() + this.idSuffix,
      via: viaFor(req.httpVersionMajor, req.httpVersionMinor),
      region: this.region,
    };
  }

  /** The app a Host header routes to (with or without machines to serve it now); otherwise why not. */
  route(host: string | undefined): AppState | Refusal {
    const name = appFromHost(host, this.domains);
    if (name === undefined) {
      const domains = this.domains.map((d) => `<app>.${d}`).join(" or ");
      const message = host
        ? `no app is served at host ${host}; apps answer at ${domains}`
        : `the request has no Host header; apps answer at ${domains}`;
      return { status: 404, code: "no_route", message, app: UNROUTED_APP };
    }
    const app = this.pool.resolve(name);
    if (app === undefined) return notFound(name);
    return app;
  }

  /**
   * A backend of `app` under its limits (see pickBackend), never `avoid` when another will do; only
   * among those `only` accepts, when given (a replay's target).
   */
  pick(app: AppState, avoid?: BackendState, only?: (b: BackendState) => boolean): BackendState | undefined {
    const backends = only === undefined ? app.backends : app.backends.filter(only);
    return pickBackend(backends, this.now(), this.random, avoid, app);
  }

  /**
   * Sends `held` to a machine of `app` that can take it now. Otherwise holds it in the app's queue
   * (every machine at its hard limit, or a machine being woken), returning its place, or refuses it.
   * While others wait, a newcomer queues behind them, and goes on at once only when those ahead wait
   * for machines of their own (replays held for one machine or region).
   */
  admit(app: AppState, held: Held): QueueEntry<Held> | undefined {
    if (app.queue.size === 0) {
      const backend = this.pick(app, undefined, held.only);
      if (backend) {
        this.send(app, held, backend);
        return undefined;
      }
      return this.hold(app, held);
    }
    const entry = this.hold(app, held);
    if (entry === undefined) return undefined;
    this.pump(app);
    return app.queue.has(entry) ? entry : undefined;
  }

  /** The metrics of an app (or UNROUTED_APP), when metrics are on. */
  appMetrics(app: string): AppMetrics | undefined {
    return this.metrics?.forApp(app);
  }

  /** Stops following the route table and refuses every held request. */
  shutdown(): void {
    this.unsubscribe();
    for (const app of this.pool.apps.values()) {
      if (app.wake) this.endWake(app, app.wake, undefined);
      for (const held of app.queue.drain()) {
        held.refuse({
          status: 503,
          code: "unavailable",
          message: "the proxy is shutting down; try again",
          app: app.app,
          retryAfter: NO_MACHINE_RETRY_AFTER_S,
        });
      }
    }
  }

  private send(app: AppState, held: Held, backend: BackendState): void {
    // Every machine is at or over its soft limit: start one more, as Fly does, while this one serves.
    if (backend.inFlight >= app.soft) this.wakeOne(app);
    held.go(backend);
  }

  private hold(app: AppState, held: Held): QueueEntry<Held> | undefined {
    this.wakeOne(app);
    const waitsForMachine = this.awaitsMachine(app);
    if (app.backends.length === 0 && !waitsForMachine) {
      held.refuse(noStartedMachine(app.app));
      return undefined;
    }
    if (app.queue.size >= this.queueMax) {
      held.refuse({
        status: 503,
        code: "queue_full",
        message: `app ${app.app} has ${app.queue.size} requests waiting for a machine already; try again shortly`,
        app: app.app,
        retryAfter: NO_MACHINE_RETRY_AFTER_S,
      });
      return undefined;
    }
    const timeoutMs = waitsForMachine ? this.wakeTimeoutMs : this.queueTimeoutMs;
    const entry = app.queue.push(held, timeoutMs, (h) => h.refuse(this.timedOut(app, timeoutMs)));
    this.pool.track(app);
    return entry;
  }

  /** Hands freed slots (or new machines) to held requests, oldest first; refuses them when hope is gone. */
  private pump(app: AppState): void {
    for (const entry of app.queue) {
      const held = entry.item;
      const backend = this.pick(app, undefined, held.only);
      if (backend === undefined) {
        // Every machine is at its hard limit. A replay held for one machine or region is not: those
        // behind it may go to the others.
        if (held.only === undefined) break;
        continue;
      }
      app.queue.remove(entry);
      this.send(app, held, backend);
    }
    if (app.queue.size === 0 || app.backends.length > 0) return;
    this.wakeOne(app);
    if (this.awaitsMachine(app)) return;
    for (const held of app.queue.drain()) held.refuse(noStartedMachine(app.app));
  }

  /** Whether a machine of the app is on its way (woken here, or being started by anyone) for requests to wait on. */
  private awaitsMachine(app: AppState): boolean {
    return app.settings.autostart && (app.wake !== undefined || app.starting.length > 0);
  }

  /**
   * Starts one sleeping machine of the app, unless autostart is off, a machine is already on its
   * way, or none sleeps. One at a time per app: concurrent requests share the wake-up.
   */
  private wakeOne(app: AppState): void {
    const waker = this.waker;
    if (!waker || !app.settings.autostart || app.wake !== undefined || app.starting.length > 0) return;
    if (app.sleeping.length === 0) return;
    const now = this.now();
    const candidates = wakeOrder(
      app.sleeping.filter((m) => (app.refusedWakes.get(m.machineId) ?? 0) <= now),
      this.region,
    );
    if (candidates.length === 0) return;
    const timer = setTimeout(() => this.wakeTimedOut(app, wake), this.wakeTimeoutMs);
    timer.unref();
    const wake: Wake = { machineId: undefined, timer };
    app.wake = wake;
    this.pool.track(app);
    // In the trace of the request that needed it (admit runs in the request's context).
    void withSpan("machine wake", { attributes: { "hangar.app": app.app } }, (span) =>
      this.runWake(waker, app, wake, candidates, span),
    );
  }

  private async runWake(
    waker: Waker,
    app: AppState,
    wake: Wake,
    candidates: readonly SleepingMachine[],
    span: Span,
  ): Promise<void> {
    for (const machine of candidates) {
      if (app.wake !== wake) return;
      span.setAttribute("hangar.machine_id", machine.machineId);
      try {
        await waker.start(app.app, machine);
      } catch (err) {
        const refused = err instanceof WakeRefusedError;
        this.logger.warn({ app: app.app, machine_id: machine.machineId, err }, "could not wake a machine");
        this.metrics?.wake(app.app, refused ? "refused" : "error");
        app.refusedWakes.set(machine.machineId, this.now() + REFUSED_WAKE_MS);
        continue;
      }
      if (app.wake !== wake) return;
      wake.machineId = machine.machineId;
      // The table may have folded the start already.
      this.routeChanged(app.app);
      return;
    }
    // A wake replaced or cancelled meanwhile did not fail: only this one's end is its outcome.
    if (app.wake !== wake) return;
    span.setStatus({ code: SpanStatusCode.ERROR, message: "no sleeping machine could be woken" });
    this.endWake(app, wake, undefined);
    this.pump(app);
  }

  /** Ends the app's wake-up once its machine serves, or when it went elsewhere (failed, destroyed). */
  private checkWake(app: AppState): void {
    const wake = app.wake;
    const id = wake?.machineId;
    if (wake === undefined || id === undefined) return;
    if (app.backends.some((b) => b.machineId === id)) {
      this.endWake(app, wake, "ready");
      return;
    }
    if (app.starting.includes(id) || app.sleeping.some((m) => m.machineId === id)) return;
    this.endWake(app, wake, "failed");
    app.refusedWakes.set(id, this.now() + REFUSED_WAKE_MS);
  }

  private wakeTimedOut(app: AppState, wake: Wake): void {
    if (app.wake !== wake) return;
    this.endWake(app, wake, "timeout");
    this.pump(app);
  }

  private endWake(app: AppState, wake: Wake, result: WakeResult | undefined): void {
    clearTimeout(wake.timer);
    if (app.wake === wake) app.wake = undefined;
    if (result) this.metrics?.wake(app.app, result);
  }

  private routeChanged(name: string): void {
    const state = this.pool.apps.get(name);
    if (state === undefined || (state.queue.size === 0 && state.wake === undefined)) return;
    const app = this.pool.resolve(name);
    if (app === undefined) {
      if (state.wake) this.endWake(state, state.wake, "failed");
      for (const held of state.queue.drain()) held.refuse(notFound(name));
      return;
    }
    this.checkWake(app);
    this.pump(app);
  }

  private timedOut(app: AppState, waitedMs: number): Refusal {
    const s = Math.round(waitedMs / 1000);
    if (app.backends.length === 0) {
      return {
        status: 503,
        code: "machine_start_timeout",
        message: `no machine of app ${app.app} started within ${s} s`,
        app: app.app,
        retryAfter: NO_MACHINE_RETRY_AFTER_S,
      };
    }
    return {
      status: 503,
      code: "queue_timeout",
      message: `every machine of app ${app.app} stayed at its hard limit (${app.settings.hardLimit}) for ${s} s`,
      app: app.app,
      retryAfter: NO_MACHINE_RETRY_AFTER_S,
    };
  }

  private *queuedByApp(): Iterable<[string, number]> {
    for (const app of this.pool.apps.values()) yield [app.app, app.queue.size];
  }
}

/** Whether route() found an app. */
export function isRouted(r: AppState | Refusal): r is AppState {
  return r instanceof AppState;
}

function notFound(app: string): Refusal {
  return { status: 404, code: "not_found", message: `app ${app} not found`, app: UNROUTED_APP };
}

function noStartedMachine(app: string): Refusal {
  return {
    status: 503,
    code: "no_started_machine",
    message: `no started machine can serve app ${app}`,
    app,
    retryAfter: NO_MACHINE_RETRY_AFTER_S,
  };
}

// IPv4 clients of a dual-stack socket show up IPv4-mapped; apps expect the plain address.
function clientIp(remote: string | undefined): string {
  if (remote === undefined) return "";
  return remote.startsWith("::ffff:") && remote.includes(".") ? remote.slice(7) : remote;
}
