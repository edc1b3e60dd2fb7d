import { Agent } from "node:http";
import type { Candidate } from "./balancer.js";
import { ErrorScore } from "./health.js";
import type { Backend, RouteTable } from "./route-table.js";

// Idle upstream sockets close within node's default 5 s server keep-alive timeout, so a reused
// socket is rarely one the machine is closing. Servers that announce a shorter Keep-Alive timeout
// are honoured by the agent itself; a GET that still meets a closed socket is retried.
const IDLE_SOCKET_MS = 4_000;

/** One machine of an app as the proxy tracks it: its keep-alive pool, load and recent errors. */
export class BackendState implements Candidate {
  readonly errors = new ErrorScore();
  inFlight = 0;
  readonly agent: Agent;
  private retired = false;

  constructor(
    readonly machineId: string,
    readonly address: string,
    readonly port: number,
    readonly region: string | undefined,
    maxSockets: number,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets, timeout: IDLE_SOCKET_MS });
  }

  /** Whether `b` is this machine at this address. */
  is(b: Backend): boolean {
    return b.machineId === this.machineId && b.address === this.address && b.port === this.port;
  }

  /** Marks a request on this backend as ended; frees the pool of a retired backend once idle. */
  release(): void {
    this.inFlight--;
    if (this.retired && this.inFlight === 0) this.agent.destroy();
  }

  /** Takes the backend out of service: its sockets close now, or when its last request ends. */
  retire(): void {
    this.retired = true;
    if (this.inFlight === 0) this.agent.destroy();
  }
}

/** An app's current backends and the requests in flight for it. */
export class AppState {
  inFlight = 0;
  backends: BackendState[] = [];

  constructor(
    readonly app: string,
    private readonly maxSockets: number,
  ) {}

  /** Follows the route table's backend list, keeping the state of machines still in it. */
  sync(list: readonly Backend[]): void {
    if (this.matches(list)) return;
    const next = list.map(
      (b) =>
        this.backends.find((s) => s.is(b)) ??
        new BackendState(b.machineId, b.address, b.port, b.region, this.maxSockets),
    );
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

/**
 * The proxy's per-app state, synced lazily with the route table on each request for the app.
 * Apps without backends or requests in flight are forgotten.
 */
export class BackendPool {
  readonly apps = new Map<string, AppState>();

  constructor(
    private readonly routes: RouteTable,
    private readonly maxSockets: number,
  ) {}

  /** The app's state, or undefined when the table does not know the app. */
  resolve(app: string): AppState | undefined {
    const route = this.routes.lookup(app);
    let state = this.apps.get(app);
    if (route === undefined) {
      if (state) this.forget(state, []);
      return undefined;
    }
    if (route.backends.length === 0) {
      if (state) this.forget(state, route.backends);
      return state ?? new AppState(app, this.maxSockets);
    }
    if (state === undefined) {
      state = new AppState(app, this.maxSockets);
      this.apps.set(app, state);
    }
    state.sync(route.backends);
    return state;
  }

  /** Marks a request of the app as ended. */
  release(state: AppState): void {
    state.inFlight--;
    if (state.inFlight === 0 && state.backends.length === 0) this.apps.delete(state.app);
  }

  /** Closes every pool. */
  destroy(): void {
    for (const state of this.apps.values()) state.sync([]);
    this.apps.clear();
  }

  private forget(state: AppState, backends: readonly Backend[]): void {
    state.sync(backends);
    if (state.inFlight === 0) this.apps.delete(state.app);
  }
}
