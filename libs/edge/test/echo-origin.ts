import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** What an echo origin saw of one request. */
export interface SeenRequest {
  method: string;
  /** Path and query, as the request line had them. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTP server on a free loopback port that answers each request with what it saw, as JSON. */
export interface EchoOrigin {
  url: string;
  /** Host header value a client sends it (`127.0.0.1:<port>`). */
  host: string;
  seen: SeenRequest[];
  /** Decides the status of each request (200 unless set). */
  status: (req: SeenRequest) => number;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Starts an echo origin; `name` goes into every answer (`origin` field) to tell origins apart. */
export async function startEchoOrigin(name = "origin"): Promise<EchoOrigin> {
  const origin: EchoOrigin = {
    url: "",
    host: "",
    seen: [],
    status: () => 200,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server: Server = createServer(async (req, res) => {
    const seen: SeenRequest = {
      method: req.method ?? "",
      path: req.url ?? "",
      headers: req.headers,
      body: await readBody(req),
    };
    origin.seen.push(seen);
    const status = origin.status(seen);
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify({ origin: name, ...seen }));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  origin.host = `127.0.0.1:${port}`;
  origin.url = `http://${origin.host}`;
  return origin;
}
