import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "@hangar/telemetry";
import type { Registry } from "prom-client";
import { AppState, BackendPool } from "./backends.js";
import { type Forwarding, viaFor } from "./headers.js";
import { appFromHost, normalizeDomains } from "./host.js";
import { type AppMetrics, ProxyMetrics, UNROUTED_APP } from "./metrics.js";
import type { Refusal } from "./refusal.js";
import { ulid } from "./request-id.js";
import type { RouteTable } from "./route-table.js";

/** Seconds a client is told to wait when an app has no machine to serve it. */
const NO_MACHINE_RETRY_AFTER_S = 1;

/** What the request and upgrade paths share: routing, pools, metrics, clocks. */
export interface EngineOptions {
  routes: RouteTable;
  domains: readonly string[];
  region: string | undefined;
  maxSockets: number;
  logger: Logger;
  registry: Registry | undefined;
}

/** The proxy's shared state; one per proxy server. */
export class ProxyEngine {
  readonly pool: BackendPool;
  readonly domains: readonly string[];
  readonly region: string | undefined;
  readonly logger: Logger;
  readonly metrics: ProxyMetrics | undefined;
  /** Upgraded connections, closed with the proxy. */
  readonly tunnels = new Set<Duplex>();
  readonly random: () => number = Math.random;
  readonly now: () => number = () => performance.now();
  private readonly idSuffix: string;

  constructor(opts: EngineOptions) {
    this.pool = new BackendPool(opts.routes, opts.maxSockets);
    this.domains = normalizeDomains(opts.domains);
    this.region = opts.region;
    this.logger = opts.logger;
    this.metrics = opts.registry ? new ProxyMetrics(opts.registry) : undefined;
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

  /** The app a Host header routes to, if it has machines to serve it; otherwise why not. */
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
    if (app === undefined) {
      return { status: 404, code: "not_found", message: `app ${name} not found`, app: UNROUTED_APP };
    }
    if (app.backends.length === 0) {
      return {
        status: 503,
        code: "no_started_machine",
        message: `no started machine can serve app ${name}`,
        app: name,
        retryAfter: NO_MACHINE_RETRY_AFTER_S,
      };
    }
    return app;
  }

  /** The metrics of an app (or UNROUTED_APP), when metrics are on. */
  appMetrics(app: string): AppMetrics | undefined {
    return this.metrics?.forApp(app);
  }
}

/** Whether route() found an app. */
export function isRouted(r: AppState | Refusal): r is AppState {
  return r instanceof AppState;
}

// IPv4 clients of a dual-stack socket show up IPv4-mapped; apps expect the plain address.
function clientIp(remote: string | undefined): string {
  if (remote === undefined) return "";
  return remote.startsWith("::ffff:") && remote.includes(".") ? remote.slice(7) : remote;
}
