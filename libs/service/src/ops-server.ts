import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, Registry } from "prom-client";

/** What a service says about itself on GET /health. */
export interface HealthReport {
  ok: boolean;
  [detail: string]: unknown;
}

export interface OpsServerOptions {
  /** Port to listen on; 0 picks a free one. */
  port: number;
  host?: string;
  service: string;
  /** The service's metrics; default process metrics are added to it. */
  registry?: Registry;
  health(): HealthReport;
  /** More GET paths in the Prometheus text format (e.g. the monitor's /metrics/apps), looked up per request. */
  textRoutes?(): Readonly<Record<string, () => string>> | undefined;
}

/** A running ops endpoint: /health and /metrics. */
export interface OpsServer {
  server: Server;
  port: number;
  registry: Registry;
  close(): Promise<void>;
}

/** Serves GET /health (200 when ok, 503 otherwise) and GET /metrics (Prometheus text) for one service. */
export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const registry = opts.registry ?? new Registry();
  registry.setDefaultLabels({ service: opts.service });
  collectDefaultMetrics({ register: registry });
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/health") {
      const report = opts.health();
      res.writeHead(report.ok ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ service: opts.service, ...report }));
      return;
    }
    if (req.method === "GET" && path === "/metrics") {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(String(err));
        },
      );
      return;
    }
    const route = req.method === "GET" && path ? opts.textRoutes?.()?.[path] : undefined;
    if (route) {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(route());
      return;
    }
    const paths = ["/health", "/metrics", ...Object.keys(opts.textRoutes?.() ?? {})].join(", ");
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: `not found: this port serves ${paths}`, status: "not_found" }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "0.0.0.0", () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    registry,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
