import {
  type Agent,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import type { AppRoute, Backend, RouteTable } from "../src/engine/mod.js";

/** A machine stand-in: a real HTTP server on a free port that counts requests and connections. */
export interface Upstream {
  name: string;
  port: number;
  backend: Backend;
  hits: number;
  connections: number;
  server: Server;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, self: Upstream) => void;

/** Answers 200 with JSON naming the upstream and echoing the request. */
export const echo: Handler = (req, res, self) => {
  req.resume();
  req.on("end", () => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ upstream: self.name, method: req.method, url: req.url, headers: req.headers }));
  });
};

const started: Server[] = [];

/** Starts an upstream on 127.0.0.1, port 0. */
export async function startUpstream(name: string, handler: Handler = echo): Promise<Upstream> {
  const server = createServer();
  const self: Upstream = {
    name,
    port: 0,
    backend: { machineId: name, address: "127.0.0.1", port: 0 },
    hits: 0,
    connections: 0,
    server,
  };
  server.on("connection", () => self.connections++);
  server.on("request", (req, res) => {
    self.hits++;
    handler(req, res, self);
  });
  started.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  self.port = (server.address() as AddressInfo).port;
  self.backend.port = self.port;
  return self;
}

/** Stops every upstream started so far. */
export async function stopUpstreams(): Promise<void> {
  await Promise.all(
    started.splice(0).map(
      (s) =>
        new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }),
    ),
  );
}

/** A port nothing listens on: a backend there refuses connections. */
export async function refusingBackend(name: string): Promise<Backend> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return { machineId: name, address: "127.0.0.1", port };
}

/** A route table the test edits between requests; listeners hear of each edit, as the stream table's do. */
export class TestRoutes implements RouteTable {
  private readonly apps = new Map<string, AppRoute>();
  private readonly listeners = new Set<(app: string) => void>();

  /** Sets an app's backends, and optionally its settings and its sleeping and starting machines. */
  set(app: string, backends: Backend[], extra: Omit<AppRoute, "app" | "backends"> = {}): void {
    this.apps.set(app, { app, backends, ...extra });
    for (const l of this.listeners) l(app);
  }

  delete(app: string): void {
    this.apps.delete(app);
    for (const l of this.listeners) l(app);
  }

  lookup(app: string): AppRoute | undefined {
    return this.apps.get(app);
  }

  onChange(listener: (app: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export interface Answer {
  status: number;
  headers: IncomingMessage["headers"];
  body: Buffer;
  json(): Record<string, unknown>;
}

export interface SendOptions {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  agent?: Agent;
}

/** Sends one request to the proxy with the given Host and collects the whole answer. */
export function send(port: number, host: string, opts: SendOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: opts.method ?? "GET",
        path: opts.path ?? "/",
        headers: { ...opts.headers, host },
        agent: opts.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: () => JSON.parse(body.toString()) as Record<string, unknown>,
          });
        });
      },
    );
    req.on("error", reject);
    if (opts.body === undefined) req.end();
    else if (Buffer.isBuffer(opts.body)) req.end(opts.body);
    else opts.body.pipe(req);
  });
}
