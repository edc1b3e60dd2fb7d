import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Machine } from "../src/types.js";

/** A request the fake API received. */
export interface SeenRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  authorization: string | undefined;
}

/** A canned answer; `body` is sent as JSON. */
export interface Reply {
  status: number;
  body?: unknown;
}

/** Computes the reply from the request and how many times the route was called before. */
export type Route = (req: SeenRequest, calls: number) => Reply;

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  if (text === "") return undefined;
  // JSON, except an upload of something else (an edge bundle), kept as its text.
  return (req.headers["content-type"] ?? "").startsWith("application/json") ? JSON.parse(text) : text;
}

/**
 * A stand-in for the gateway's HTTP API: answers `METHOD /v1/path` routes with canned JSON, records every
 * request, refuses a wrong bearer token with 401 and unknown paths with 404, the way the gateway does.
 */
export class FakeApi {
  readonly requests: SeenRequest[] = [];
  private readonly routes = new Map<string, Route>();
  private readonly calls = new Map<string, number>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(token: string): Promise<FakeApi> {
    let api: FakeApi | undefined;
    const server = createServer((req, res) => {
      void (async () => {
        const url = new URL(req.url ?? "/", "http://fake");
        const seen: SeenRequest = {
          method: req.method ?? "",
          path: url.pathname.replace(/^\/v1/, ""),
          query: Object.fromEntries(url.searchParams),
          body: await readBody(req),
          authorization: req.headers.authorization,
        };
        const reply = (api as FakeApi).answer(seen, token);
        res.writeHead(reply.status, { "content-type": "application/json" });
        res.end(reply.body === undefined ? "" : JSON.stringify(reply.body));
      })();
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    api = new FakeApi(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return api;
  }

  /** Answers `method path` (path without /v1) with `body` and `status` from now on. */
  reply(method: string, path: string, body: unknown, status = 200): void {
    this.route(method, path, () => ({ status, body }));
  }

  /** Answers `method path` (path without /v1) with what `route` computes from now on. */
  route(method: string, path: string, route: Route): void {
    this.routes.set(`${method} ${path}`, route);
  }

  /** The requests received for `method path`, oldest first. */
  seen(method: string, path: string): SeenRequest[] {
    return this.requests.filter((r) => r.method === method && r.path === path);
  }

  private answer(req: SeenRequest, token: string): Reply {
    this.requests.push(req);
    if (req.authorization !== `Bearer ${token}`) {
      return { status: 401, body: { error: "unauthorized", status: "unauthorized" } };
    }
    const key = `${req.method} ${req.path}`;
    const route = this.routes.get(key);
    if (!route) return { status: 404, body: { error: "app not found", status: "not_found" } };
    const calls = this.calls.get(key) ?? 0;
    this.calls.set(key, calls + 1);
    return route(req, calls);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A machine as the API returns it, with `overrides` on top. */
export function fakeMachine(id: string, overrides: Partial<Machine> = {}): Machine {
  return {
    id,
    name: `name-${id}`,
    state: "started",
    region: "local",
    instance_id: `inst-${id}`,
    config: { image: "nginx:1.27" },
    created_at: "2025-01-31T12:00:00Z",
    updated_at: "2025-01-31T12:00:00Z",
    ...overrides,
  };
}
