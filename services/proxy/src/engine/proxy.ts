import { createServer, type Server } from "node:http";
import { createLogger, type Logger } from "@hangar/telemetry";
import type { Registry } from "prom-client";
import { ProxyEngine } from "./engine.js";
import { handleRequest } from "./exchange.js";
import type { RouteTable } from "./route-table.js";
import { handleUpgrade } from "./tunnel.js";

/** How long close() lets requests in flight finish before cutting them. */
export const CLOSE_GRACE_MS = 10_000;

export interface ProxyOptions {
  routes: RouteTable;
  /** Host `<app>.<domain>[:port]` routes to the app, for each domain. Default `["localhost"]`. */
  domains?: readonly string[];
  /** Region this proxy runs in: sent as Fly-Region and suffixed to request ids. */
  region?: string;
  /** Most connections kept open to one machine. Default 128. */
  keepAliveMaxSockets?: number;
  /** Default: createLogger("proxy"). Only failures are logged, at debug level. */
  logger?: Logger;
  /** Where request, retry and upstream latency metrics go; none when absent. */
  registry?: Registry;
}

/** Requests in flight on one machine, and its recent error score. */
export interface BackendStats {
  machineId: string;
  address: string;
  port: number;
  region?: string;
  inFlight: number;
  /** Recent failures (5xx, connect errors), halving every 10 s. */
  errorScore: number;
}

/** Requests (and upgraded connections) in flight for an app, in total and per machine. */
export interface AppStats {
  app: string;
  inFlight: number;
  backends: BackendStats[];
}

/** A snapshot of the proxy's load; apps with no state (never asked for, or gone idle) are left out. */
export interface ProxyStats {
  inFlight: number;
  apps: AppStats[];
}

export interface EdgeProxy {
  /** Not listening yet: the caller calls `server.listen(port)`. */
  server: Server;
  /** Stops accepting, waits up to CLOSE_GRACE_MS for requests in flight, closes upstream pools. */
  close(): Promise<void>;
  stats(): ProxyStats;
}

/** Creates the edge proxy: routes by Host, balances over an app's machines, retries safe requests. */
export function createProxy(opts: ProxyOptions): EdgeProxy {
  const engine = new ProxyEngine({
    routes: opts.routes,
    domains: opts.domains ?? ["localhost"],
    region: opts.region,
    maxSockets: opts.keepAliveMaxSockets ?? 128,
    logger: opts.logger ?? createLogger("proxy"),
    registry: opts.registry,
  });
  const server = createServer();
  // A request node parsed but cannot forward (http.request validates more strictly) must not take
  // the whole proxy down.
  server.on("request", (req, res) => {
    try {
      handleRequest(engine, req, res);
    } catch (err) {
      engine.logger.warn({ err, url: req.url }, "could not forward request");
      if (res.headersSent) res.destroy();
      else res.writeHead(400).end();
    }
  });
  server.on("upgrade", (req, socket, head) => {
    try {
      handleUpgrade(engine, req, socket, head);
    } catch (err) {
      engine.logger.warn({ err, url: req.url }, "could not forward upgrade request");
      socket.destroy();
    }
  });

  const close = async (): Promise<void> => {
    for (const socket of engine.tunnels) socket.destroy();
    await new Promise<void>((resolve) => {
      const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
      server.close(() => {
        clearTimeout(cut);
        resolve();
      });
      server.closeIdleConnections();
    });
    engine.pool.destroy();
  };

  const stats = (): ProxyStats => {
    const now = engine.now();
    let inFlight = 0;
    const apps: AppStats[] = [];
    for (const state of engine.pool.apps.values()) {
      inFlight += state.inFlight;
      apps.push({
        app: state.app,
        inFlight: state.inFlight,
        backends: state.backends.map((b) => ({
          machineId: b.machineId,
          address: b.address,
          port: b.port,
          ...(b.region === undefined ? {} : { region: b.region }),
          inFlight: b.inFlight,
          errorScore: b.errors.read(now),
        })),
      });
    }
    return { inFlight, apps };
  };

  return { server, close, stats };
}
