import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { createLogger, type Logger } from "@hangar/telemetry";
import type { Registry } from "prom-client";
import { type EdgeApps, serveEdge } from "../edge/serve.js";
import type { StaticFiles } from "../statics/static-files.js";
import type { LimitShare } from "./backends.js";
import { ProxyEngine } from "./engine.js";
import { handleRequest } from "./exchange.js";
import { appFromHost } from "./host.js";
import { closeIdleAfter } from "./idle.js";
import type { RouteTable } from "./route-table.js";
import { handleUpgrade } from "./tunnel.js";
import type { Waker } from "./waker.js";

/** How long close() lets requests in flight finish before cutting them. */
export const CLOSE_GRACE_MS = 10_000;

/** Fly-like defaults for requests held until a machine can take them. */
export const QUEUE_DEFAULTS = Object.freeze({
  queueMax: 1000,
  queueTimeoutMs: 10_000,
  wakeTimeoutMs: 30_000,
});

export interface ProxyOptions {
  routes: RouteTable;
  /** Host `<app>.<domain>[:port]` routes to the app, for each domain. Default `["localhost"]`. */
  domains?: readonly string[];
  /** Region this proxy runs in: sent as Fly-Region and suffixed to request ids. */
  region?: string;
  /** Most connections kept open to a machine without a hard limit (one with: that many). Default 128. */
  keepAliveMaxSockets?: number;
  /** Default: createLogger("proxy"). Only failures are logged, at debug level. */
  logger?: Logger;
  /** Where request, retry, upstream latency, queue and wake-up metrics go; none when absent. */
  registry?: Registry;
  /** Starts sleeping machines for requests (autostart). None: an app with no started machine gets 503. */
  waker?: Waker;
  /** Most requests held per app (every machine at its hard limit, or one being woken). Default 1000. */
  queueMax?: number;
  /** How long a request is held for a machine under its hard limit before 503. Default 10 s. */
  queueTimeoutMs?: number;
  /** How long a request is held for a machine being started before 503. Default 30 s. */
  wakeTimeoutMs?: number;
  /** Serves the apps' `[[statics]]` paths without their machines. None: the machines serve them. */
  statics?: StaticFiles;
  /**
   * This process's part of every machine's soft and hard limits when the proxy runs as several
   * worker processes (worker `index` of `count`). None: the whole limits.
   */
  share?: LimitShare;
  /**
   * Told the app of a machine taken out of service (cordoned, stopped, gone) once the last request
   * this proxy had on it ends: the load publisher reports it at once, so a drain need not wait.
   */
  onDrained?: (app: string) => void;
  /**
   * The edge apps this proxy runs: a request whose Host names one runs its code first (before
   * statics and machines). None: every app is served by its machines.
   */
  edge?: EdgeApps;
}

/** Requests in flight on one machine, and its recent error score. */
export interface BackendStats {
  machineId: string;
  address: string;
  port: number;
  region?: string;
  /** Its concurrency as the limits count it: requests and upgraded connections in flight on it. */
  inFlight: number;
  /** Recent failures (5xx, connect errors), halving every 10 s. */
  errorScore: number;
}

/** Requests (and upgraded connections) in flight for an app, in total and per machine. */
export interface AppStats {
  app: string;
  /** Everything in flight for the app, held requests included. */
  inFlight: number;
  /** Requests held until a machine can take them. */
  queued: number;
  /** Requests and upgrades received since the proxy began tracking the app (it changes: there was activity). */
  received: number;
  /** The machine this proxy is waking for the app, if any ("" while its start is being asked for). */
  waking?: string;
  backends: BackendStats[];
}

/** A snapshot of the proxy's load; apps with no state (never asked for, or gone idle) are left out. */
export interface ProxyStats {
  inFlight: number;
  queued: number;
  /** The MACHINES stream sequence the route table had folded (0 when it does not follow the stream). */
  machinesSeq: number;
  apps: AppStats[];
}

export interface EdgeProxy {
  /** Not listening yet: the caller calls `server.listen(port)`. */
  server: Server;
  /**
   * The same routing and balancing with no edge app's code in front: where an edge app's fetch of
   * `<app>.internal` goes (so a fetch of its own name cannot loop). Not listening yet: the caller
   * binds it to loopback when it runs edge apps.
   */
  internal: Server;
  /** Stops accepting, waits up to CLOSE_GRACE_MS for requests in flight, closes upstream pools. */
  close(): Promise<void>;
  stats(): ProxyStats;
}

/**
 * Creates the edge proxy: routes by Host, balances over an app's machines under their concurrency
 * limits, holds requests while every machine is at its hard limit or one is being woken, retries
 * safe requests.
 */
export function createProxy(opts: ProxyOptions): EdgeProxy {
  const engine = new ProxyEngine({
    routes: opts.routes,
    domains: opts.domains ?? ["localhost"],
    region: opts.region,
    maxSockets: opts.keepAliveMaxSockets ?? 128,
    logger: opts.logger ?? createLogger("proxy"),
    registry: opts.registry,
    waker: opts.waker,
    queueMax: opts.queueMax ?? QUEUE_DEFAULTS.queueMax,
    queueTimeoutMs: opts.queueTimeoutMs ?? QUEUE_DEFAULTS.queueTimeoutMs,
    wakeTimeoutMs: opts.wakeTimeoutMs ?? QUEUE_DEFAULTS.wakeTimeoutMs,
    ...(opts.share === undefined ? {} : { share: opts.share }),
    ...(opts.onDrained === undefined ? {} : { onDrained: opts.onDrained }),
  });
  const server = createServer();
  // A request node parsed but cannot forward (http.request validates more strictly) must not take
  // the whole proxy down.
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    try {
      handleRequest(engine, req, res);
    } catch (err) {
      engine.logger.warn({ err, url: req.url }, "could not forward request");
      if (res.headersSent) res.destroy();
      else res.writeHead(400).end();
    }
  };
  const statics = opts.statics;
  const edge = opts.edge;
  server.on("request", (req, res) => {
    if (statics === undefined && edge === undefined) return forward(req, res);
    const app = appFromHost(req.headers.host, engine.domains);
    if (app === undefined) return forward(req, res);
    if (edge?.has(app)) return serveEdge(engine, edge, app, req, res);
    if (statics === undefined || (req.method !== "GET" && req.method !== "HEAD")) return forward(req, res);
    const route = opts.routes.lookup(app);
    const set = route?.statics;
    if (set === undefined) return forward(req, res);
    if (route?.idleTimeout !== undefined) closeIdleAfter(res, route.idleTimeout);
    // Fly's headers on the proxy's own answers too, as on its refusals.
    const fwd = engine.forwarding(req);
    const signature: Record<string, string> = { via: fwd.via, "fly-request-id": fwd.requestId };
    if (fwd.region !== undefined) signature["fly-region"] = fwd.region;
    statics.serve(app, set, req, res, signature).then(
      (served) => {
        if (!served) return forward(req, res);
        const m = engine.appMetrics(app);
        if (m) engine.metrics?.request(m, res.statusCode);
      },
      (err: unknown) => {
        // The bucket unreachable: the machines still have the files.
        engine.logger.warn({ err, app, url: req.url }, "could not serve a static file; forwarding");
        if (res.headersSent) res.destroy();
        else forward(req, res);
      },
    );
  });
  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    try {
      handleUpgrade(engine, req, socket, head);
    } catch (err) {
      engine.logger.warn({ err, url: req.url }, "could not forward upgrade request");
      socket.destroy();
    }
  };
  server.on("upgrade", upgrade);
  const internal = createServer();
  internal.on("request", forward);
  internal.on("upgrade", upgrade);

  const close = async (): Promise<void> => {
    engine.shutdown();
    for (const socket of engine.tunnels) socket.destroy();
    await Promise.all([closeServer(server), closeServer(internal)]);
    engine.pool.destroy();
  };

  const stats = (): ProxyStats => {
    const now = engine.now();
    let inFlight = 0;
    let queued = 0;
    const apps: AppStats[] = [];
    for (const state of engine.pool.apps.values()) {
      inFlight += state.inFlight;
      queued += state.queue.size;
      apps.push({
        app: state.app,
        inFlight: state.inFlight,
        queued: state.queue.size,
        received: state.received,
        ...(state.wake ? { waking: state.wake.machineId ?? "" } : {}),
        // Machines out of the route still count their requests until those end: a drain waits for them.
        backends: [...state.backends, ...state.retiring].map((b) => ({
          machineId: b.machineId,
          address: b.address,
          port: b.port,
          ...(b.region === undefined ? {} : { region: b.region }),
          inFlight: b.inFlight,
          errorScore: b.errors.read(now),
        })),
      });
    }
    return { inFlight, queued, machinesSeq: opts.routes.machinesSeq ?? 0, apps };
  };

  return { server, internal, close, stats };
}

/** Stops accepting, waits up to CLOSE_GRACE_MS for requests in flight, then cuts them. */
function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
    server.close(() => {
      clearTimeout(cut);
      resolve();
    });
    server.closeIdleConnections();
  });
}
