import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { Agent, createServer, type IncomingMessage, request } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import { Readable } from "node:stream";
import { responseRules } from "@hangar/config";
import { createLogger } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProxy, type EdgeProxy } from "../src/engine/mod.js";
import { type Handler, refusingBackend, send, startUpstream, stopUpstreams, TestRoutes } from "./harness.js";

const routes = new TestRoutes();
const registry = new Registry();
let proxy: EdgeProxy;
let port: number;

beforeAll(async () => {
  proxy = createProxy({
    routes,
    region: "ams",
    registry,
    logger: createLogger("proxy-test", { level: "silent" }),
  });
  await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
  port = (proxy.server.address() as AddressInfo).port;
});

afterAll(async () => {
  await proxy?.close();
  await stopUpstreams();
});

const hostOf = (app: string) => `${app}.localhost:${port}`;
const get = (app: string, opts?: Parameters<typeof send>[2]) => send(port, hostOf(app), opts);

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  const value = m?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}

function errorScore(app: string, machineId: string): number {
  const backend = proxy
    .stats()
    .apps.find((a) => a.app === app)
    ?.backends.find((b) => b.machineId === machineId);
  if (!backend) throw new Error(`no backend ${machineId} of ${app} in stats`);
  return backend.errorScore;
}

// Answers 500 to the first request each upstream sees, 200 after.
const failsFirst: Handler = (req, res, self) => {
  req.resume();
  res.statusCode = self.hits === 1 ? 500 : 200;
  res.end(`from ${self.name}`);
};

const alwaysFails: Handler = (req, res, self) => {
  req.resume();
  res.statusCode = 500;
  res.end(`failed at ${self.name}`);
};

describe("routing", () => {
  it("spreads an app's requests over all its machines", async () => {
    const ups = await Promise.all(["t1", "t2", "t3"].map((n) => startUpstream(n)));
    routes.set(
      "trio",
      ups.map((u) => u.backend),
    );
    for (let i = 0; i < 60; i++) expect((await get("trio")).status).toBe(200);
    for (const u of ups) expect(u.hits, u.name).toBeGreaterThan(0);
    expect(ups.reduce((n, u) => n + u.hits, 0)).toBe(60);
    expect(await metric("hangar_proxy_requests_total", { app: "trio", status_class: "2xx" })).toBe(60);
    expect(await metric("hangar_proxy_upstream_response_seconds", { app: "trio", le: "+Inf" })).toBe(60);
    expect(
      await metric("hangar_proxy_request_duration_seconds", { app: "trio", status_class: "2xx", le: "+Inf" }),
    ).toBe(60);
  });

  it("answers 404 for an unknown app, with a JSON reason", async () => {
    const res = await get("ghost");
    expect(res.status).toBe(404);
    expect(res.headers["content-type"]).toMatch(/application\/json/);
    expect(res.json()).toEqual({ error: "app ghost not found", status: "not_found" });
    expect(res.headers["fly-request-id"]).toBeTruthy();
  });

  it("answers 404 for hosts outside the proxy's domains and for requests without a Host", async () => {
    const res = await send(port, "ghost.example.com");
    expect(res.status).toBe(404);
    expect(res.json().status).toBe("no_route");
    expect(String(res.json().error)).toContain("ghost.example.com");

    const socket = connect(port, "127.0.0.1");
    socket.end("GET / HTTP/1.0\r\n\r\n");
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    await once(socket, "close");
    const raw = Buffer.concat(chunks).toString();
    expect(raw).toMatch(/^HTTP\/1\.1 404 /);
    expect(raw).toContain("no Host header");
  });

  it("answers 503 with Retry-After for an app with no started machine", async () => {
    routes.set("asleep", []);
    const res = await get("asleep");
    expect(res.status).toBe(503);
    expect(res.headers["retry-after"]).toBe("1");
    expect(res.json()).toEqual({
      error: "no started machine can serve app asleep",
      status: "no_started_machine",
    });
  });

  it("follows route table changes on the next request", async () => {
    const [a, b] = await Promise.all([startUpstream("move-a"), startUpstream("move-b")]);
    routes.set("moving", [a.backend]);
    expect((await get("moving")).json().upstream).toBe("move-a");
    routes.set("moving", [b.backend]);
    expect((await get("moving")).json().upstream).toBe("move-b");
    routes.set("moving", []);
    expect((await get("moving")).status).toBe(503);
    routes.delete("moving");
    expect((await get("moving")).status).toBe(404);
    routes.set("moving", [a.backend]);
    expect((await get("moving")).json().upstream).toBe("move-a");
  });
});

describe("headers", () => {
  it("tells the machine who asked and signs the answer", async () => {
    const up = await startUpstream("hdr", (req, res) => {
      res.setHeader("via", "1.1 app-server");
      res.setHeader("connection", "x-app-hop");
      res.setHeader("x-app-hop", "secret");
      res.end(JSON.stringify({ headers: req.headers, raw: req.rawHeaders }));
    });
    routes.set("hdr", [up.backend]);
    const res = await get("hdr", {
      headers: {
        "fly-client-ip": "6.6.6.6",
        "x-forwarded-for": "203.0.113.9",
        "x-forwarded-proto": "https",
        via: "1.1 cdn",
        "fly-request-id": "forged",
        connection: "keep-alive, x-client-hop",
        "x-client-hop": "secret",
        "proxy-authorization": "Basic eDp5",
        "x-kept": "yes",
      },
    });
    expect(res.status).toBe(200);
    const seen = res.json().headers as Record<string, string>;
    expect(seen.host).toBe(hostOf("hdr"));
    expect(seen["fly-client-ip"]).toBe("127.0.0.1");
    expect(seen["x-forwarded-for"]).toBe("203.0.113.9, 127.0.0.1");
    expect(seen["x-forwarded-proto"]).toBe("http");
    expect(seen["x-forwarded-port"]).toBe(String(port));
    expect(seen.via).toBe("1.1 cdn, 1.1 hangar");
    expect(seen["x-kept"]).toBe("yes");
    expect(seen["x-client-hop"]).toBeUndefined();
    expect(seen["proxy-authorization"]).toBeUndefined();
    expect(seen["fly-request-id"]).toMatch(/^[0-9A-Z]{26}-ams$/);
    expect(res.headers["fly-request-id"]).toBe(seen["fly-request-id"]);
    expect(res.headers.via).toBe("1.1 app-server, 1.1 hangar");
    expect(res.headers["fly-region"]).toBe("ams");
    expect(res.headers["x-app-hop"]).toBeUndefined();

    const again = await get("hdr");
    expect(again.headers["fly-request-id"]).not.toBe(res.headers["fly-request-id"]);
    expect((again.json().headers as Record<string, string>)["x-forwarded-for"]).toBe("127.0.0.1");
  });
});

describe("retries", () => {
  it("retries a GET on another machine when the first refuses the connection", async () => {
    const up = await startUpstream("alive");
    const dead = await refusingBackend("dead");
    routes.set("half-dead", [dead, up.backend]);
    for (let i = 0; i < 10; i++) expect((await get("half-dead")).status).toBe(200);
    expect(up.hits).toBe(10);
  });

  it("waits for a machine that has just started and does not listen yet", async () => {
    const late = await refusingBackend("late");
    routes.set("just-started", [late]);
    const answer = get("just-started");
    // The machine's server comes up while the request waits.
    await new Promise((r) => setTimeout(r, 150));
    const server = createServer((req, res) => {
      req.resume();
      res.end("finally");
    });
    await new Promise<void>((resolve) => server.listen(late.port, "127.0.0.1", resolve));
    try {
      const res = await answer;
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe("finally");
      expect(
        await metric("hangar_proxy_retries_total", { app: "just-started", reason: "connect_refused" }),
      ).toBeGreaterThan(0);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("answers 502 when the retry cannot connect either", async () => {
    routes.set("all-dead", [await refusingBackend("dead-1"), await refusingBackend("dead-2")]);
    const res = await get("all-dead");
    expect(res.status).toBe(502);
    expect(res.json().status).toBe("bad_gateway");
    expect(String(res.json().error)).toContain("ECONNREFUSED");
    expect(errorScore("all-dead", "dead-1")).toBeGreaterThan(0);
    expect(errorScore("all-dead", "dead-2")).toBeGreaterThan(0);
    expect(await metric("hangar_proxy_retries_total", { app: "all-dead", reason: "connect_error" })).toBe(1);
  });

  it("retries a GET once on another machine after a 5xx and gives the client the last answer", async () => {
    const ups = await Promise.all([startUpstream("ff-1", failsFirst), startUpstream("ff-2", failsFirst)]);
    routes.set(
      "flaky",
      ups.map((u) => u.backend),
    );
    const res = await get("flaky");
    // Each machine fails its first request: the first try and the retry both fail, once each.
    expect(ups.map((u) => u.hits)).toEqual([1, 1]);
    expect(res.status).toBe(500);
    const first = ups.find((u) => `from ${u.name}` !== res.body.toString());
    expect(first).toBeDefined();
    expect(await metric("hangar_proxy_retries_total", { app: "flaky", reason: "status_5xx" })).toBe(1);
    expect((await get("flaky")).status).toBe(200);
  });

  it("never retries a POST", async () => {
    const ups = await Promise.all([
      startUpstream("post-1", alwaysFails),
      startUpstream("post-2", alwaysFails),
    ]);
    routes.set(
      "posting",
      ups.map((u) => u.backend),
    );
    const res = await get("posting", { method: "POST", body: Buffer.from("order #1") });
    expect(res.status).toBe(500);
    expect(ups[0].hits + ups[1].hits).toBe(1);

    routes.set("posting-dead", [await refusingBackend("pd-1"), await refusingBackend("pd-2")]);
    const refused = await get("posting-dead", { method: "POST", body: Buffer.from("order #2") });
    expect(refused.status).toBe(502);
    const scores = [errorScore("posting-dead", "pd-1"), errorScore("posting-dead", "pd-2")];
    expect(scores.filter((s) => s > 0)).toHaveLength(1);
  });

  it("sends less traffic to a machine that keeps failing", async () => {
    const bad = await startUpstream("bad", alwaysFails);
    const good = await Promise.all([startUpstream("good-1"), startUpstream("good-2")]);
    routes.set("mixed", [bad.backend, ...good.map((u) => u.backend)]);
    for (let i = 0; i < 60; i++) expect((await get("mixed")).status).toBe(200);
    for (const u of good) expect(bad.hits, u.name).toBeLessThan(u.hits);
    expect(errorScore("mixed", "bad")).toBeGreaterThan(0);
  });
});

describe("streaming", () => {
  it("streams large bodies both ways", async () => {
    let received = "";
    const up = await startUpstream("big", (req, res) => {
      const hash = createHash("sha256");
      req.on("data", (c: Buffer) => hash.update(c));
      req.on("end", () => {
        received = hash.digest("hex");
      });
      req.pipe(res);
    });
    routes.set("big", [up.backend]);
    const chunk = randomBytes(64 * 1024);
    const chunks = 256; // 16 MiB
    const sent = createHash("sha256");
    for (let i = 0; i < chunks; i++) sent.update(chunk);
    const body = Readable.from(
      (function* () {
        for (let i = 0; i < chunks; i++) yield chunk;
      })(),
    );
    const res = await get("big", { method: "PUT", body });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(chunk.length * chunks);
    const digest = sent.digest("hex");
    expect(received).toBe(digest);
    expect(createHash("sha256").update(res.body).digest("hex")).toBe(digest);
  });

  it("passes the first bytes on before the machine has finished answering", async () => {
    let finish = () => {};
    const up = await startUpstream("drip", (req, res) => {
      req.resume();
      res.write("first ");
      finish = () => res.end("last");
    });
    routes.set("drip", [up.backend]);
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      request({ host: "127.0.0.1", port, headers: { host: hostOf("drip") }, agent: false }, resolve)
        .on("error", reject)
        .end(),
    );
    const [first] = (await once(res, "data")) as [Buffer];
    expect(first.toString()).toBe("first ");
    finish();
    let rest = "";
    for await (const c of res) rest += c;
    expect(rest).toBe("last");
  }, 10_000);

  it("holds back a machine's answer while the client does not read", async () => {
    const total = 256 * 1024 * 1024;
    let written = 0;
    let stalled = () => {};
    const stall = new Promise<void>((resolve) => {
      stalled = resolve;
    });
    let upstreamClosed = false;
    const up = await startUpstream("flood", (req, res) => {
      req.resume();
      const chunk = Buffer.alloc(64 * 1024);
      res.on("close", () => {
        upstreamClosed = true;
      });
      const pump = () => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) {
            // Still stuck a while later: the proxy is not reading ahead of the client.
            const at = written;
            const timer = setTimeout(() => at === written && stalled(), 300);
            res.once("drain", () => {
              clearTimeout(timer);
              pump();
            });
            return;
          }
        }
        res.end();
      };
      pump();
    });
    routes.set("flood", [up.backend]);
    const req = request({ host: "127.0.0.1", port, headers: { host: hostOf("flood") }, agent: false });
    req.on("error", () => {});
    req.end();
    const [res] = (await once(req, "response")) as [IncomingMessage];
    res.pause();
    await stall;
    expect(written).toBeLessThan(total / 4);
    // The client leaving cuts the machine's side too.
    req.destroy();
    await expect.poll(() => upstreamClosed).toBe(true);
    await expect.poll(() => proxy.stats().apps.find((a) => a.app === "flood")?.inFlight).toBe(0);
  }, 10_000);

  it("cuts the client connection when the machine dies mid-answer", async () => {
    const up = await startUpstream("dies", (req, res) => {
      req.resume();
      res.writeHead(200, { "content-length": "1000" });
      res.write("partial", () => res.socket?.destroy());
    });
    routes.set("dies", [up.backend]);
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      request({ host: "127.0.0.1", port, headers: { host: hostOf("dies") }, agent: false }, resolve)
        .on("error", reject)
        .end(),
    );
    expect(res.statusCode).toBe(200);
    const outcome = new Promise<string>((resolve) => {
      res.on("error", (e) => resolve(e.message));
      res.on("end", () => resolve("ended"));
      res.resume();
    });
    expect(await outcome).toBe("aborted");
    expect(errorScore("dies", "dies")).toBeGreaterThan(0);
  });

  it("counts requests in flight per app and machine while they last", async () => {
    let finish = () => {};
    const up = await startUpstream("slow", (req, res) => {
      req.resume();
      finish = () => res.end("done");
    });
    routes.set("slow", [up.backend]);
    const pending = get("slow");
    await expect.poll(() => up.hits).toBe(1);
    const app = proxy.stats().apps.find((a) => a.app === "slow");
    expect(app?.inFlight).toBe(1);
    expect(app?.backends[0]?.inFlight).toBe(1);
    expect(proxy.stats().inFlight).toBeGreaterThanOrEqual(1);
    finish();
    expect((await pending).body.toString()).toBe("done");
    await expect.poll(() => proxy.stats().apps.find((a) => a.app === "slow")?.inFlight).toBe(0);
    expect(proxy.stats().apps.find((a) => a.app === "slow")?.backends[0]?.inFlight).toBe(0);
  });
});

describe("connections", () => {
  it("reuses keep-alive connections to a machine", async () => {
    const up = await startUpstream("ka");
    routes.set("ka", [up.backend]);
    for (let i = 0; i < 20; i++) expect((await get("ka")).status).toBe(200);
    expect(up.connections).toBe(1);

    const agent = new Agent({ keepAlive: true, maxSockets: 5 });
    try {
      await Promise.all(Array.from({ length: 50 }, () => get("ka", { agent })));
    } finally {
      agent.destroy();
    }
    expect(up.hits).toBe(70);
    expect(up.connections).toBeLessThanOrEqual(6);
  });

  it("tunnels upgraded connections", async () => {
    const up = await startUpstream("ws");
    up.server.on("upgrade", (req, socket) => {
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Seen-Client: ${req.headers["fly-client-ip"]}\r\n\r\n`,
      );
      socket.pipe(socket);
    });
    routes.set("ws", [up.backend]);
    const req = request({
      host: "127.0.0.1",
      port,
      headers: { host: hostOf("ws"), connection: "Upgrade", upgrade: "echo" },
      agent: false,
    });
    req.end();
    const [res, socket] = (await once(req, "upgrade")) as [IncomingMessage, Socket];
    expect(res.statusCode).toBe(101);
    expect(res.headers.upgrade).toBe("echo");
    expect(res.headers["x-seen-client"]).toBe("127.0.0.1");
    expect(res.headers.via).toBe("1.1 hangar");
    socket.write("ping");
    const [echoed] = (await once(socket, "data")) as [Buffer];
    expect(echoed.toString()).toBe("ping");
    expect(proxy.stats().apps.find((a) => a.app === "ws")?.inFlight).toBe(1);
    socket.destroy();
    await expect.poll(() => proxy.stats().apps.find((a) => a.app === "ws")?.inFlight).toBe(0);
  });

  it("relays a machine's refusal to upgrade, then closes the connection", async () => {
    const up = await startUpstream("no-ws");
    routes.set("no-ws", [up.backend]);
    const req = request({
      host: "127.0.0.1",
      port,
      headers: { host: hostOf("no-ws"), connection: "Upgrade", upgrade: "echo" },
      agent: false,
    });
    req.end();
    const [res] = (await once(req, "response")) as [IncomingMessage];
    expect(res.statusCode).toBe(200);
    expect(res.headers.connection).toBe("close");
    let body = "";
    for await (const c of res) body += c;
    expect(JSON.parse(body).upstream).toBe("no-ws");
    await expect.poll(() => proxy.stats().apps.find((a) => a.app === "no-ws")?.inFlight).toBe(0);
  });

  it("refuses an upgrade for an unknown app", async () => {
    const req = request({
      host: "127.0.0.1",
      port,
      headers: { host: hostOf("ghost-ws"), connection: "Upgrade", upgrade: "echo" },
      agent: false,
    });
    req.end();
    const [res] = (await once(req, "response")) as [IncomingMessage];
    expect(res.statusCode).toBe(404);
    res.resume();
  });
});

describe("http_options.response (fly.toml)", () => {
  const withResponse = (response: Record<string, unknown>) =>
    responseRules({ services: [{ ports: [{ port: 80, handlers: ["http"], http_options: { response } }] }] });
  const powered: Handler = (req, res) => {
    req.resume();
    res.setHeader("X-Powered-By", "Express");
    res.setHeader("X-Frame-Options", "SAMEORIGIN");
    res.end("ok");
  };

  it("sets and removes the response headers the config names, and keeps the machine's others", async () => {
    const up = await startUpstream("hdr", powered);
    const response = withResponse({
      headers: { "X-Frame-Options": "DENY", "X-Powered-By": false, "X-Multi": ["a", "b"] },
    });
    routes.set("hdr", [up.backend], response ? { response } : {});
    const res = await get("hdr");
    expect(res.status).toBe(200);
    expect(res.headers["x-frame-options"]).toBe("DENY");
    expect(res.headers["x-powered-by"]).toBeUndefined();
    expect(res.headers["x-multi"]).toBe("a, b");
    expect(res.headers["fly-request-id"]).toBeDefined();
    expect(res.body.toString()).toBe("ok");
  });

  it("leaves out the proxy's own headers when pristine", async () => {
    const up = await startUpstream("pristine", powered);
    const response = withResponse({ pristine: true });
    routes.set("pristine", [up.backend], response ? { response } : {});
    const res = await get("pristine");
    expect(res.headers["fly-request-id"]).toBeUndefined();
    expect(res.headers.via).toBeUndefined();
    expect(res.headers["x-powered-by"]).toBe("Express");
  });
});
