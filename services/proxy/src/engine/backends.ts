import { Agent } from "node:http";
import { DEFAULT_SCALING, type ResponseRules, type ScalingSettings } from "@hangar/config";
import type { Candidate, Limits } from "./balancer.js";
import { ErrorScore } from "./health.js";
import type { Held } from "./held.js";
import { HoldQueue } from "./queue.js";
import type { AppRoute, Backend, RouteTable, SleepingMachine } from "./route-table.js";

// Idle upstream sockets close within node's default 5 s server keep-alive timeout, so a reused
// socket is rarely one the machine is closing. Servers that announce a shorter Keep-Alive timeout
// are honoured by the agent itself; a GET that still meets a closed socket is retried.
const IDLE_SOCKET_MS = 4_000;

/** One machine of an app as the proxy tracks it: its keep-alive pool, load and recent errors. */
export class BackendState implements Candidate {
  readonly errors = new ErrorScore();
  /**
   * The machine's concurrency as its limits count it: requests and upgraded connections in flight on
   * it through this proxy, for both concurrency types (with the http handler, a connection to a
   * machine is busy exactly while a request or a tunnel uses it).
   */
  inFlight = 0;
  readonly agent: Agent;
  private retired = false;

  constructor(
    private readonly owner: AppState,
    readonly machineId: string,
    readonly address: string,
    readonly port: number,
    readonly region: string | undefined,
    maxSockets: number,
  ) {
    // Open connections are capped by the configured most, not by the hard limit: a connection can
    // stay busy after its request's slot is freed (a 5xx body drained while the request is retried
    // elsewhere), and a cap of hard would then queue requests inside the Agent, unseen by the
    // proxy's own queue and metrics.
    this.agent = new Agent({
      keepAlive: true,
      maxSockets,
      maxFreeSockets: poolSize(owner.hard, maxSockets),
      timeout: IDLE_SOCKET_MS,
    });
  }

  /** Keeps as many idle connections as the machine's hard limit lets it take requests. */
  size(hard: number, maxSockets: number): void {
    this.agent.maxFreeSockets = poolSize(hard, maxSockets);
  }

  /** Whether `b` is this machine at this address. */
  is(b: Backend): boolean {
    return b.machineId === this.machineId && b.address === this.address && b.port === this.port;
  }

  /**
   * Marks a request on this backend as ended; frees the pool of a retired backend once idle, and
   * hands the freed slot to the app's oldest held request.
   */
  release(): void {
    this.inFlight--;
    if (this.retired && this.inFlight === 0) {
      this.agent.destroy();
      this.owner.retiring.delete(this);
      this.owner.drained(this.owner);
    }
    if (this.owner.queue.size > 0) this.owner.slotFreed(this.owner);
  }

  /**
   * Takes the backend out of service: its sockets close now, or when its last request ends (until
   * then it is one of the app's `retiring` backends, whose requests the load samples still count).
   */
  retire(): void {
    this.retired = true;
    if (this.inFlight === 0) this.agent.destroy();
    else this.owner.retiring.add(this);
  }

  /** Puts a retiring backend (its machine routable again) back in service, its requests and pool kept. */
  revive(): void {
    this.retired = false;
    this.owner.retiring.delete(this);
  }
}

/** A wake-up this proxy runs for an app: one machine at a time. */
export interface Wake {
  /** The machine whose start was recorded; undefined while the start is being asked for. */
  machineId: string | undefined;
  readonly timer: NodeJS.Timeout;
}

/**
 * This process's part of the machines' limits when the proxy runs as several worker processes
 * (HANGAR_PROXY_WORKERS): worker `index` of `count`. Without it the process holds the whole limits.
 */
export interface LimitShare {
  index: number;
  count: number;
}

/**
 * Worker `index`'s part of `limit` split over `count` workers: the parts add up to the limit, so the
 * workers together never hold more requests on a machine than its hard limit, without talking to
 * each other. A limit below the worker count leaves some workers a part of 0.
 */
export function shareOf(limit: number, share: LimitShare | undefined): number {
  if (share === undefined || share.count <= 1 || !Number.isFinite(limit)) return limit;
  const base = Math.floor(limit / share.count);
  return base + (share.index < limit % share.count ? 1 : 0);
}

/** Called when a backend of the app frees a slot while requests are held. */
export type SlotFreed = (app: AppState) => void;

/** Called when the last request on a backend taken out of service (its machine cordoned or gone) ends. */
export type BackendDrained = (app: AppState) => void;

/**
 * An app's current backends, settings and limits, the requests in flight for it (held ones
 * included), the requests held until a machine can take them, and its wake-up in progress.
 */
export class AppState implements Limits {
  inFlight = 0;
  /** Requests and upgrades received since this state exists: activity between two load samples. */
  received = 0;
  backends: BackendState[] = [];
  /** Backends out of the route with requests still in flight on them (their machines drain). */
  readonly retiring = new Set<BackendState>();
  settings: ScalingSettings = DEFAULT_SCALING;
  /** fly.toml's http_options.response of the app's http service (AppRoute.response). */
  response: ResponseRules | undefined = undefined;
  /** Whether its responses are compressed (AppRoute.compress). */
  compress: boolean | undefined = undefined;
  /** Seconds its client connections may stay idle (AppRoute.idleTimeout); none when undefined. */
  idleTimeout: number | undefined = undefined;
  soft = DEFAULT_SCALING.softLimit;
  hard = Number.POSITIVE_INFINITY;
  sleeping: readonly SleepingMachine[] = [];
  starting: readonly string[] = [];
  /** Its organization (AppRoute.org). */
  org: string | undefined = undefined;
  readonly queue = new HoldQueue<Held>();
  wake: Wake | undefined = undefined;
  /** Machines whose start was refused lately, with when they may be tried again (engine clock). */
  readonly refusedWakes = new Map<string, number>();

  constructor(
    readonly app: string,
    private readonly maxSockets: number,
    readonly slotFreed: SlotFreed = () => {},
    private readonly share?: LimitShare,
    readonly drained: BackendDrained = () => {},
  ) {}

  /** Follows the route: its settings, and its backend list, keeping the state of machines still in it. */
  sync(route: AppRoute): void {
    const settings = route.settings ?? DEFAULT_SCALING;
    if (settings !== this.settings) {
      this.settings = settings;
      // A soft part of 0 would count every request as over the soft limit (and wake machines for it).
      // Never above the hard part: a worker whose hard part is 0 (a hard_limit below the worker count)
      // sends the machine nothing, and the balancer admits by the soft part first.
      this.hard = shareOf(settings.hardLimit ?? Number.POSITIVE_INFINITY, this.share);
      this.soft = Math.min(this.hard, Math.max(1, shareOf(settings.softLimit, this.share)));
      for (const b of this.backends) b.size(this.hard, this.maxSockets);
    }
    this.org = route.org;
    this.response = route.response;
    this.compress = route.compress;
    this.idleTimeout = route.idleTimeout;
    this.sleeping = route.sleeping ?? NONE;
    this.starting = route.starting ?? NONE;
    this.syncBackends(route.backends);
  }

  /** Whether `b` can take one more request now (it is under the hard limit). */
  canTake(b: BackendState): boolean {
    return b.inFlight < this.hard;
  }

  private syncBackends(list: readonly Backend[]): void {
    if (this.matches(list)) return;
    const next = list.map((b) => {
      const kept = this.backends.find((s) => s.is(b));
      if (kept) return kept;
      const back = [...this.retiring].find((s) => s.is(b));
      back?.revive();
      return back ?? new BackendState(this, b.machineId, b.address, b.port, b.region, this.maxSockets);
    });
    for (const s of this.backends) if (!next.includes(s)) s.retire();
    this.backends = next;
  }

  // The common case on the hot path: nothing changed since the last request.
  private matches(list: readonly Backend[]): boolean {
    if (list.length !== this.backends.length) return false;
    for (let i = 0; i < list.length; i++) {
      if (!(this.backends[i] as BackendState).is(list[i] as Backend)) return false;
    }
    return true;
  }
}

const NONE: readonly never[] = Object.freeze([]);

/**
 * Idle connections kept to one machine: its hard limit (the proxy never has more requests on it), or
 * the configured most when it has none, so a machine at its limit keeps its connections between
 * bursts instead of reconnecting.
 */
function poolSize(hard: number, maxSockets: number): number {
  return Number.isFinite(hard) ? Math.max(1, hard) : maxSockets;
}

/**
 * The proxy's per-app state, synced lazily with the route table on each request for the app.
 * Apps without backends, requests in flight or a wake-up in progress are forgotten.
 */
export class BackendPool {
  readonly apps = new Map<string, AppState>();

  constructor(
    private readonly routes: RouteTable,
    private readonly maxSockets: number,
    private readonly slotFreed?: SlotFreed,
    private readonly share?: LimitShare,
    private readonly drained?: BackendDrained,
  ) {}

  /**
   * The app's state, or undefined when the table does not know the app. An app without backends
   * gets a state that is not kept unless `track` is called (a request held for it).
   */
  resolve(app: string): AppState | undefined {
    const route = this.routes.lookup(app);
    let state = this.apps.get(app);
    if (route === undefined) {
      if (state) this.forget(state, { app, backends: [] });
      return undefined;
    }
    if (route.backends.length === 0) {
      if (state) this.forget(state, route);
      else {
        state = new AppState(app, this.maxSockets, this.slotFreed, this.share, this.drained);
        state.sync(route);
      }
      return state;
    }
    if (state === undefined) {
      state = new AppState(app, this.maxSockets, this.slotFreed, this.share, this.drained);
      this.apps.set(app, state);
    }
    state.sync(route);
    return state;
  }

  /** Keeps `state` (an app without backends that now holds requests or wakes a machine). */
  track(state: AppState): void {
    if (!this.apps.has(state.app)) this.apps.set(state.app, state);
  }

  /** Marks a request of the app as ended. */
  release(state: AppState): void {
    state.inFlight--;
    if (idle(state) && this.apps.get(state.app) === state) this.apps.delete(state.app);
  }

  /** Closes every pool. */
  destroy(): void {
    for (const state of this.apps.values()) state.sync({ app: state.app, backends: [] });
    this.apps.clear();
  }

  private forget(state: AppState, route: AppRoute): void {
    state.sync(route);
    if (idle(state) && this.apps.get(state.app) === state) this.apps.delete(state.app);
  }
}

function idle(state: AppState): boolean {
  return state.inFlight === 0 && state.backends.length === 0 && state.wake === undefined;
}
