import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import { serveUpgrades, type TunnelUpgrade } from "../tunnel/upgrade.js";

/** The header of @hono/node-server's RESPONSE_ALREADY_SENT: the handler wrote the response itself. */
const ALREADY_SENT_HEADER = "x-hono-already-sent";

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
      {
        // Node's request and response ride along as the env: the event stream writes to the response
        // itself and answers RESPONSE_ALREADY_SENT. The API's middleware copies that answer into a new
        // Response, which @hono/node-server would send again: its marker header turns it back.
        fetch: async (request, env) => {
          const res = await app.fetch(request, env as never);
          return res.headers.get(ALREADY_SENT_HEADER) ? RESPONSE_ALREADY_SENT : res;
        },
        port: opts.port,
        hostname,
      },

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
