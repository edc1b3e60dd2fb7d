import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { serveUpgrades, type TunnelUpgrade } from "../tunnel/upgrade.js";

export interface ApiServer {
  /** The port bound, useful when asked for port 0. */
  port: number;
  /** `http://<hostname>:<port>`. */
  url: string;
  /** Stops accepting connections and resolves when the server is closed. */
  close(): Promise<void>;
}

/** Serves `app` (the API from createApi) on Node's HTTP server, upgrades included, and resolves once it listens. */
export function startApiServer(
  app: { fetch: (request: Request, env?: { upgrade: TunnelUpgrade }) => Response | Promise<Response> },
  opts: { port: number; hostname?: string },
): Promise<ApiServer> {
  const hostname = opts.hostname ?? "127.0.0.1";
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch: (request) => app.fetch(request), port: opts.port, hostname },
      (info: AddressInfo) => {
        server.off("error", reject);
        resolve({
          port: info.port,
          url: `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${info.port}`,
          close: () =>
            new Promise<void>((done, fail) => {
              server.close((err) => (err ? fail(err) : done()));
              // Keep-alive connections and open tunnels would otherwise hold close() open.
              if ("closeIdleConnections" in server) server.closeIdleConnections();
              upgrades.closeAll();
            }),
        });
      },
    );
    // Node's HTTP/1 server: the only kind serve() makes here (no createServer option is passed).
    const upgrades = serveUpgrades(server as Server, app);
    server.once("error", reject);
  });
}
