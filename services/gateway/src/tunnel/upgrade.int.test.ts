import { once } from "node:events";
import { request } from "node:http";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiServer, startApiServer } from "../http/server.js";
import type { TunnelUpgrade } from "./upgrade.js";

// Upgrades over a real socket: an accepted one is piped to its upstream (here a TCP echo server)
// after a 101, any other answer is written as a plain response, and closing the server ends the
// tunnels still open instead of waiting for them.

let echo: Server;
let echoPort: number;

/** An app that accepts `/tunnel` (connecting to the echo server) and answers 404 to anything else. */
const app = {
  async fetch(req: Request, env?: { upgrade: TunnelUpgrade }): Promise<Response> {
    if (new URL(req.url).pathname === "/tunnel" && env) {
      const upstream = connect({ port: echoPort, host: "127.0.0.1" });
      await once(upstream, "connect");
      return env.upgrade.accept(upstream);
    }
    return new Response(JSON.stringify({ error: "no tunnel here", status: "not_found" }), {
      status: 404,
      headers: { "content-type": "application/json" },
    });
  },
};

/** Sends an upgrade request; resolves to the upgraded socket, or the plain answer. */
function upgrade(server: ApiServer, path: string): Promise<Socket | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, {
      headers: { connection: "Upgrade", upgrade: "hangar-tunnel" },
    });
    req.once("upgrade", (res, socket) => {
      expect(res.statusCode).toBe(101);
      resolve(socket);
    });
    req.once("response", (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => {
        body += d;
      });
      res.once("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once("error", reject);
    req.end();
  });
}

beforeAll(async () => {
  echo = createServer((s) => s.pipe(s)).listen(0, "127.0.0.1");
  await once(echo, "listening");
  echoPort = (echo.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((done) => echo.close(() => done())));

describe("serveUpgrades", () => {
  it("pipes an accepted upgrade to its upstream, both ways", async () => {
    const server = await startApiServer(app, { port: 0 });
    try {
      const socket = await upgrade(server, "/tunnel");
      if (!("write" in socket)) throw new Error(`expected an upgrade, got ${JSON.stringify(socket)}`);
      const back = once(socket, "data");
      socket.write("round trip");
      expect(String((await back)[0])).toBe("round trip");
      socket.destroy();
    } finally {
      await server.close();
    }
  });

  it("writes any other answer as a plain response", async () => {
    const server = await startApiServer(app, { port: 0 });
    try {
      const res = await upgrade(server, "/elsewhere");
      expect(res).toEqual({
        status: 404,
        body: JSON.stringify({ error: "no tunnel here", status: "not_found" }),
      });
    } finally {
      await server.close();
    }
  });

  it("ends open tunnels when the server closes", async () => {
    const server = await startApiServer(app, { port: 0 });
    const socket = await upgrade(server, "/tunnel");
    if (!("write" in socket)) throw new Error("expected an upgrade");
    const closed = once(socket, "close");
    await server.close();
    await closed;
  });
});
