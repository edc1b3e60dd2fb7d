import { once } from "node:events";
import { createServer, type IncomingMessage, request, type Server } from "node:http";
import { type AddressInfo, connect } from "node:net";
import type { EdgeHttpRequest, EdgeHttpResponse } from "@hangar/edge";
import { createLogger } from "@hangar/telemetry";
import { afterEach, describe, expect, it } from "vitest";
import type { ProxyEngine } from "../engine/engine.js";
import { type EdgeApps, type EdgeServeLimits, serveEdge } from "./serve.js";

/** The part of the engine serveEdge uses. */
const engine = {
  forwarding: (_req: IncomingMessage) => ({
    clientIp: "127.0.0.1",
    localPort: "80",
    requestId: "req-1",
    via: "1.1 hangar",
    region: "local",
  }),
  appMetrics: () => undefined,
  metrics: undefined,
  logger: createLogger("serve-edge-test", { level: "silent" }),
} as unknown as ProxyEngine;

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** A proxy listener whose every request is the edge app `web`'s. */
async function serving(edge: EdgeApps, limits?: EdgeServeLimits): Promise<number> {
  server = createServer((req, res) => serveEdge(engine, edge, "web", req, res, limits));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

/** The raw answer to one request on its own connection (`Connection: close`), as the wire has it. */
async function rawAnswer(port: number, head: string): Promise<string> {
  const socket = connect(port, "127.0.0.1");
  // Not ended: a client that half-closes its side is one that left, whose request Node gives up.
  socket.write(head);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("latin1");
}

const answer = (headers: [string, string][], body = "hello"): EdgeHttpResponse => ({
  status: 200,
  headers,
  body: new TextEncoder().encode(body),
});

describe("serveEdge's answer headers", () => {
  it("frames the body itself: an app's Content-Length or Transfer-Encoding in any case, or a name that is not a token, never reaches the wire", async () => {
    const port = await serving({
      has: () => true,
      dispatch: async () =>
        answer([
          ["Content-Length", "999"],
          ["CONTENT-LENGTH", "0"],
          ["Transfer-Encoding", "chunked"],
          ["Connection", "close"],
          ["bad name", "x"],
          ["x-ok\r\nx-injected", "1"],
          ["X-Kept", "yes"],
        ]),
    });
    const wire = await rawAnswer(port, "GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n");
    const [head = "", body] = wire.split("\r\n\r\n");
    const lines = head.split("\r\n");
    expect(lines[0]).toBe("HTTP/1.1 200 OK");
    expect(lines.filter((l) => /^content-length:/i.test(l))).toEqual(["Content-Length: 5"]);
    expect(lines.filter((l) => /^(transfer-encoding|bad name|x-ok|x-injected):/i.test(l))).toEqual([]);
    expect(lines).toContain("x-kept: yes");
    expect(body).toBe("hello");
  });
});

describe("serveEdge's bounds on an app's requests at once", () => {
  it("answers a clear 503 past the app's requests in flight, and takes requests again once they are done", async () => {
    const held: (() => void)[] = [];
    const port = await serving(
      {
        has: () => true,
        dispatch: (_app: string, _req: EdgeHttpRequest) =>
          new Promise((resolve) => held.push(() => resolve(answer([])))),
      },
      { requestsPerApp: 2, bodyBytesPerApp: 1024 },
    );
    const get = () => rawAnswer(port, "GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n");
    const first = [get(), get()];
    while (held.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    const third = await get();
    expect(third).toMatch(/^HTTP\/1.1 503 /);
    expect(third).toContain('"status":"edge_busy"');
    expect(third).toMatch(/edge app web has 2 requests in flight on this proxy/);
    for (const go of held.splice(0)) go();
    for (const done of await Promise.all(first)) expect(done).toMatch(/^HTTP\/1.1 200 /);
    const again = get();
    while (held.length < 1) await new Promise((resolve) => setTimeout(resolve, 10));
    for (const go of held.splice(0)) go();
    expect(await again).toMatch(/^HTTP\/1.1 200 /);
  });

  it("answers a clear 503 when the app's requests in flight hold too many body bytes, each body still bounded", async () => {
    const held: (() => void)[] = [];
    const port = await serving(
      {
        has: () => true,
        dispatch: () => new Promise((resolve) => held.push(() => resolve(answer([])))),
      },
      { requestsPerApp: 10, bodyBytesPerApp: 1000 },
    );
    const post = (size: number) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ port, host: "127.0.0.1", method: "POST", path: "/", agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
        });
        req.on("error", reject);
        req.end(Buffer.alloc(size, 1));
      });
    const first = post(600);
    while (held.length < 1) await new Promise((resolve) => setTimeout(resolve, 10));
    const second = await post(600);
    expect(second.status).toBe(503);
    expect(JSON.parse(second.body)).toMatchObject({ status: "edge_busy" });
    expect(JSON.parse(second.body).error).toMatch(/1000 bytes of request bodies/);
    for (const go of held.splice(0)) go();
    expect((await first).status).toBe(200);
    // The first request's bytes are given back once it is answered.
    const third = post(600);
    while (held.length < 1) await new Promise((resolve) => setTimeout(resolve, 10));
    for (const go of held.splice(0)) go();
    expect((await third).status).toBe(200);
  });
});
