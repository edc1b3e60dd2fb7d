// fly.toml's http_options.compress and idle_timeout through a real proxy to real machine stand-ins:
// what the client gets (checked byte for byte with node's zlib), and when its connection is closed.
// The machines' configs are made from fly.toml as a deploy makes them, and one app goes through the
// MACHINES stream on the run's nats-server to show the route table reads them.
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { type IncomingMessage, request } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import { brotliDecompressSync, createBrotliDecompress, gunzipSync, gzipSync, inflateSync } from "node:zlib";
import { machineConfigFromApp, parseAppConfig, proxyHttpOptions } from "@hangar/config";
import {
  type AppCommand,
  type AppEvent,
  type AppState,
  appDecider,
  appsStream,
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  machineDecider,
  machinesStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream, prefixedStream } from "@hangar/eventstore";
import { createLogger } from "@hangar/telemetry";
import { connect as connectNats, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createProxy, type EdgeProxy } from "../src/engine/mod.js";
import { StreamRouteTable } from "../src/routes/route-table.js";
import { type Handler, startUpstream, stopUpstreams, TestRoutes } from "./harness.js";

const routes = new TestRoutes();
let proxy: EdgeProxy;
let port: number;

beforeAll(async () => {
  proxy = createProxy({ routes, region: "ams", logger: createLogger("proxy-test", { level: "silent" }) });
  // Node's keep-alive timeout (5 s, and 1 s more) would close an idle connection within the bounds
  // below too: longer here, only idle_timeout can.
  proxy.server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
  port = (proxy.server.address() as AddressInfo).port;
});

afterAll(async () => {
  await proxy?.close();
  await stopUpstreams();
});

const hostOf = (app: string) => `${app}.localhost:${port}`;

/** The route options of a machine deployed from this fly.toml `[http_service.http_options]` body. */
function optionsFrom(httpOptions: string) {
  const toml = `app = "a"\n[http_service]\n  internal_port = 8080\n  [http_service.http_options]\n${httpOptions}\n`;
  return proxyHttpOptions(machineConfigFromApp(parseAppConfig(toml, "fly.toml").config, "img"));
}

interface Answer {
  status: number;
  headers: IncomingMessage["headers"];
  /** The bytes as they came, undecoded. */
  body: Buffer;
}

function get(
  app: string,
  path: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method, path, headers: { ...headers, host: hostOf(app) }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

function decoded(answer: Answer): Buffer {
  switch (answer.headers["content-encoding"]) {
    case "br":
      return brotliDecompressSync(answer.body);
    case "gzip":
      return gunzipSync(answer.body);
    case "deflate":
      return inflateSync(answer.body);
    default:
      return answer.body;
  }
}

describe("http_options.compress", () => {
  // 20 KB of JSON, as an API would answer.
  const items = Array.from({ length: 400 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ["a", "b"] }));
  const JSON_BODY = Buffer.from(JSON.stringify(items).padEnd(20 * 1024, " "));
  const SMALL = Buffer.from(JSON.stringify({ ok: true, note: "x".repeat(200) }));
  const PNG = Buffer.concat([Buffer.from("89504e470d0a1a0a", "hex"), randomBytes(20 * 1024)]);
  const GZIPPED = gzipSync(JSON_BODY);
  const ALL = "gzip, deflate, br";

  const machine: Handler = (req, res) => {
    req.resume();
    switch (req.url) {
      case "/json":
        res.writeHead(200, {
          "Content-Type": "application/json; charset=utf-8",
          "Content-Length": JSON_BODY.length,
          ETag: '"v1"',
          Vary: "Origin",
          "Accept-Ranges": "bytes",
        });
        res.end(req.method === "HEAD" ? undefined : JSON_BODY);
        return;
      case "/small":
        res.writeHead(200, { "Content-Type": "application/json", "Content-Length": SMALL.length });
        res.end(SMALL);
        return;
      case "/png":
        res.writeHead(200, { "Content-Type": "image/png", "Content-Length": PNG.length });
        res.end(PNG);
        return;
      case "/gzipped":
        res.writeHead(200, {
          "Content-Type": "application/json",
          "Content-Encoding": "gzip",
          "Content-Length": GZIPPED.length,
        });
        res.end(GZIPPED);
        return;
      default:
        res.writeHead(404).end();
    }
  };

  const zipped = "zip";
  const plain = "plain";
  beforeAll(async () => {
    const up = await startUpstream("zip-m", machine);
    const options = optionsFrom("    compress = true");
    expect(options).toEqual({ compress: true });
    routes.set(zipped, [up.backend], options);
    routes.set(plain, [up.backend], optionsFrom("    compress = false"));
  });

  it("compresses a 20 KB JSON answer in the best coding the client accepts, the same bytes once decoded", async () => {
    for (const [accept, encoding] of [
      [ALL, "br"],
      ["gzip", "gzip"],
      ["deflate, gzip;q=0.5", "deflate"],
    ] as const) {
      const res = await get(zipped, "/json", { "Accept-Encoding": accept });
      expect(res.status).toBe(200);
      expect(res.headers["content-encoding"]).toBe(encoding);
      expect(res.headers["content-length"]).toBeUndefined();
      expect(res.headers["transfer-encoding"]).toBe("chunked");
      expect(res.headers["accept-ranges"]).toBeUndefined();
      expect(res.headers.vary).toBe("Origin, Accept-Encoding");
      expect(res.headers.etag).toBe('W/"v1"');
      expect(res.body.length).toBeLessThan(JSON_BODY.length / 3);
      expect(decoded(res).equals(JSON_BODY)).toBe(true);
    }
    // A client that accepts no coding, or refuses each one, gets the machine's answer as it was.
    const refusing: Record<string, string>[] = [{}, { "Accept-Encoding": "identity, br;q=0, gzip;q=0" }];
    for (const headers of refusing) {
      const res = await get(zipped, "/json", headers);
      expect(res.headers["content-encoding"]).toBeUndefined();
      expect(res.headers["content-length"]).toBe(String(JSON_BODY.length));
      expect(res.headers.etag).toBe('"v1"');
      expect(res.body.equals(JSON_BODY)).toBe(true);
    }
  });

  it("relays what does not qualify as the machine sent it: a small body, an image, an encoded body, a HEAD", async () => {
    // What does qualify, from the same app and machine, is compressed.
    expect((await get(zipped, "/json", { "Accept-Encoding": ALL })).headers["content-encoding"]).toBe("br");
    const small = await get(zipped, "/small", { "Accept-Encoding": ALL });
    expect(small.headers["content-encoding"]).toBeUndefined();
    expect(small.headers["content-length"]).toBe(String(SMALL.length));
    expect(small.body.equals(SMALL)).toBe(true);

    const png = await get(zipped, "/png", { "Accept-Encoding": ALL });
    expect(png.headers["content-encoding"]).toBeUndefined();
    expect(png.headers["content-length"]).toBe(String(PNG.length));
    expect(png.body.equals(PNG)).toBe(true);

    // Not compressed twice, nor re-encoded in the client's best coding.
    const gz = await get(zipped, "/gzipped", { "Accept-Encoding": ALL });
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gz.headers["content-length"]).toBe(String(GZIPPED.length));
    expect(gz.body.equals(GZIPPED)).toBe(true);

    const head = await get(zipped, "/json", { "Accept-Encoding": ALL }, "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers["content-encoding"]).toBeUndefined();
    expect(head.headers["content-length"]).toBe(String(JSON_BODY.length));
    expect(head.headers.etag).toBe('"v1"');
  });

  it("gives an app without compress the machine's bytes and headers, whatever the client accepts", async () => {
    // The same machine's answer, to an app with compress and to one without.
    expect((await get(zipped, "/json", { "Accept-Encoding": ALL })).headers["content-encoding"]).toBe("br");
    const res = await get(plain, "/json", { "Accept-Encoding": ALL });
    expect(res.headers["content-encoding"]).toBeUndefined();
    expect(res.headers["content-length"]).toBe(String(JSON_BODY.length));
    expect(res.headers.etag).toBe('"v1"');
    expect(res.headers.vary).toBe("Origin");
    expect(res.headers["accept-ranges"]).toBe("bytes");
    expect(res.body.equals(JSON_BODY)).toBe(true);
  });

  it("passes each streamed chunk on, compressed, before the machine has finished answering", async () => {
    let finish = () => {};
    const up = await startUpstream("zip-drip", (req, res) => {
      req.resume();
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.write("first chunk, ");
      finish = () => res.end("last chunk");
    });
    routes.set("zip-drip", [up.backend], optionsFrom("    compress = true"));
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      request(
        {
          host: "127.0.0.1",
          port,
          headers: { host: hostOf("zip-drip"), "accept-encoding": "br" },
          agent: false,
        },
        resolve,
      )
        .on("error", reject)
        .end(),
    );
    expect(res.headers["content-encoding"]).toBe("br");
    const text = res.pipe(createBrotliDecompress());
    const [first] = (await once(text, "data")) as [Buffer];
    expect(first.toString()).toBe("first chunk, ");
    finish();
    let rest = "";
    for await (const c of text) rest += c;
    expect(rest).toBe("last chunk");
  }, 10_000);

  it("holds back a machine's answer while the client does not read, and cuts it when the client leaves", async () => {
    const total = 256 * 1024 * 1024;
    let written = 0;
    let stalled = () => {};
    const stall = new Promise<void>((resolve) => {
      stalled = resolve;
    });
    let upstreamClosed = false;
    const up = await startUpstream("zip-flood", (req, res) => {
      req.resume();
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.on("close", () => {
        upstreamClosed = true;
      });
      const pump = () => {
        while (written < total) {
          // Random bytes: they do not compress, so what is held back is about what was written.
          const chunk = randomBytes(64 * 1024);
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
    routes.set("zip-flood", [up.backend], optionsFrom("    compress = true"));
    const req = request({
      host: "127.0.0.1",
      port,
      headers: { host: hostOf("zip-flood"), "accept-encoding": "gzip" },
      agent: false,
    });
    req.on("error", () => {});
    req.end();
    const [res] = (await once(req, "response")) as [IncomingMessage];
    expect(res.headers["content-encoding"]).toBe("gzip");
    res.pause();
    await stall;
    expect(written).toBeLessThan(total / 4);
    req.destroy();
    await expect.poll(() => upstreamClosed).toBe(true);
    await expect.poll(() => proxy.stats().apps.find((a) => a.app === "zip-flood")?.inFlight).toBe(0);
  }, 20_000);

  it("cuts the client's connection when the machine dies mid-answer: a cut body is never taken for whole", async () => {
    let die = () => {};
    const up = await startUpstream("zip-dies", (req, res) => {
      req.resume();
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": "100000" });
      res.write(JSON_BODY.subarray(0, 5000));
      die = () => res.socket?.destroy();
    });
    routes.set("zip-dies", [up.backend], optionsFrom("    compress = true"));
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      request(
        {
          host: "127.0.0.1",
          port,
          headers: { host: hostOf("zip-dies"), "accept-encoding": "gzip" },
          agent: false,
        },
        resolve,
      )
        .on("error", reject)
        .end(),
    );
    expect(res.headers["content-encoding"]).toBe("gzip");
    const outcome = new Promise<string>((resolve) => {
      res.on("error", (e) => resolve(e.message));
      res.on("end", () => resolve("ended"));
    });
    // The machine goes away once the first compressed bytes have reached the client.
    await once(res, "data");
    die();
    res.resume();
    expect(await outcome).toBe("aborted");
    await expect.poll(() => proxy.stats().apps.find((a) => a.app === "zip-dies")?.inFlight).toBe(0);
  });
});

/** Sends one keep-alive GET on a raw connection and reads its whole answer (Content-Length framed). */
async function keepAliveGet(socket: Socket, app: string): Promise<string> {
  socket.write(`GET / HTTP/1.1\r\nHost: ${hostOf(app)}\r\nConnection: keep-alive\r\n\r\n`);
  let text = "";
  for (;;) {
    const [chunk] = (await once(socket, "data")) as [Buffer];
    text += chunk.toString();
    const end = text.indexOf("\r\n\r\n");
    const length = /\r\ncontent-length: (\d+)/i.exec(text);
    if (end !== -1 && length && text.length >= end + 4 + Number(length[1])) return text;
  }
}

async function opened(): Promise<Socket> {
  const socket = connect(port, "127.0.0.1");
  await once(socket, "connect");
  return socket;
}

/** Resolves with how many ms after `since` the socket closed, or "open" if it has not within `ms`. */
function closedWithin(socket: Socket, ms: number, since: number): Promise<number | "open"> {
  if (socket.destroyed) return Promise.resolve(performance.now() - since);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve("open"), ms);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(performance.now() - since);
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("http_options.idle_timeout", () => {
  it("closes an app's idle keep-alive connection after its idle_timeout, and not another app's", async () => {
    const up = await startUpstream("idle-m");
    routes.set("idle", [up.backend], optionsFrom("    idle_timeout = 1"));
    routes.set("no-idle", [up.backend], optionsFrom("    compress = false"));
    const [idle, kept] = await Promise.all([opened(), opened()]);
    const [idleAnswer] = await Promise.all([keepAliveGet(idle, "idle"), keepAliveGet(kept, "no-idle")]);
    const answered = performance.now();
    expect(idleAnswer).toMatch(/\r\nKeep-Alive: timeout=1\r\n/i);
    const [idleClosed, keptClosed] = await Promise.all([
      closedWithin(idle, 10_000, answered),
      closedWithin(kept, 3_000, answered),
    ]);
    console.log(`idle_timeout = 1: closed ${Math.round(Number(idleClosed))} ms after the answer`);
    expect(idleClosed).not.toBe("open");
    expect(keptClosed).toBe("open");
    // Still a working connection.
    expect(await keepAliveGet(kept, "no-idle")).toMatch(/^HTTP\/1\.1 200 /);
    kept.destroy();
  }, 20_000);

  it("never cuts a request in flight, however slow its answer, then closes the connection once idle", async () => {
    const up = await startUpstream("idle-slow", (req, res) => {
      req.resume();
      res.writeHead(200, { "Content-Type": "text/plain" });
      // Chunks closer than the timeout, then a pause longer than it, for about 3 s in all.
      let n = 0;
      const next = () => {
        n++;
        if (n === 6) {
          res.end("done");
          return;
        }
        res.write(`chunk ${n}\n`);
        setTimeout(next, n === 3 ? 1_500 : 300);
      };
      next();
    });
    routes.set("idle-slow", [up.backend], optionsFrom("    idle_timeout = 1"));
    const socket = await opened();
    const started = performance.now();
    socket.write(`GET / HTTP/1.1\r\nHost: ${hostOf("idle-slow")}\r\n\r\n`);
    let text = "";
    socket.on("data", (c: Buffer) => {
      text += c.toString();
    });
    await expect.poll(() => text.endsWith("0\r\n\r\n") || socket.destroyed, { timeout: 15_000 }).toBe(true);
    expect(socket.destroyed).toBe(false);
    expect(text).toContain("chunk 5\n");
    expect(text).toContain("done");
    expect(performance.now() - started).toBeGreaterThan(1_500);
    expect(await closedWithin(socket, 10_000, performance.now())).not.toBe("open");
  }, 30_000);

  it("closes an upgraded connection with no bytes either way after its idle_timeout, not one in use, nor another app's", async () => {
    const up = await startUpstream("idle-ws");
    let upstreamSockets = 0;
    up.server.on("upgrade", (_req, socket: Socket) => {
      upstreamSockets++;
      socket.on("close", () => upstreamSockets--);
      socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n");
      socket.pipe(socket);
    });
    routes.set("idle-ws", [up.backend], optionsFrom("    idle_timeout = 1"));
    routes.set("ws", [up.backend]);
    const tunnel = async (app: string): Promise<Socket> => {
      const req = request({
        host: "127.0.0.1",
        port,
        headers: { host: hostOf(app), connection: "Upgrade", upgrade: "echo" },
        agent: false,
      });
      req.end();
      const [, socket] = (await once(req, "upgrade")) as [IncomingMessage, Socket];
      return socket;
    };
    const [quiet, busy, other] = await Promise.all([tunnel("idle-ws"), tunnel("idle-ws"), tunnel("ws")]);
    const opened = performance.now();
    // One tunnel talks every 300 ms for 3 s: never idle for a second.
    const talk = (async () => {
      for (let i = 0; i < 10; i++) {
        busy.write(`ping ${i}`);
        const [echoed] = (await once(busy, "data")) as [Buffer];
        expect(echoed.toString()).toBe(`ping ${i}`);
        await sleep(300);
      }
    })();
    const [quietClosed, otherClosed] = await Promise.all([
      closedWithin(quiet, 10_000, opened),
      closedWithin(other, 3_000, opened),
    ]);
    await talk;
    console.log(`idle_timeout = 1: tunnel closed ${Math.round(Number(quietClosed))} ms after it opened`);
    expect(quietClosed).not.toBe("open");
    expect(busy.destroyed).toBe(false);
    expect(otherClosed).toBe("open");
    busy.destroy();
    other.destroy();
    await expect.poll(() => upstreamSockets).toBe(0);
    await expect.poll(() => proxy.stats().apps.find((a) => a.app === "idle-ws")?.inFlight ?? 0).toBe(0);
  }, 20_000);
});

describe("the route table reads http_options from the machines' configs", () => {
  const suffix = randomBytes(4).toString("hex");
  const prefix = `proxyhttpopts${suffix}`;
  const streams = {
    apps: prefixedStream(appsStream, prefix),
    machines: prefixedStream(machinesStream, prefix),
  };
  let nc: NatsConnection;
  let store: EventStore;
  let table: StreamRouteTable;

  beforeAll(async () => {
    nc = await connectNats({ servers: inject("natsUrl") });
    store = await EventStore.connect(nc);
    for (const s of Object.values(streams)) await ensureStream(store.jsm, s);
    table = await StreamRouteTable.start(store, streams);
  });

  afterAll(async () => {
    await table?.stop();
    store?.close();
    await nc?.drain();
  });

  it("gives the route of an app deployed with compress and idle_timeout both, and none to an app without", async () => {
    const apps = new CommandHandler<AppState, AppCommand, AppEvent>(store, streams.apps, appDecider);
    const machines = new CommandHandler<MachineState, MachineCommand, MachineEvent>(
      store,
      streams.machines,
      machineDecider,
    );
    let n = 0;
    const meta = () => ({ commandId: `${prefix}-${++n}` });
    const deploy = async (app: string, toml: string) => {
      const config = machineConfigFromApp(parseAppConfig(toml, "fly.toml").config, "img");
      await apps.handle(app, { type: "CreateApp", name: app, orgSlug: "personal" }, meta());
      await machines.handle(
        machineAggregateId(app, "m1"),
        {
          type: "CreateMachine",
          machineId: "m1",
          app,
          name: "m1",
          region: "local",
          hostId: "h1",
          instanceId: "i1",
          configJson: JSON.stringify(config),
          skipLaunch: true,
        },
        meta(),
      );
    };
    const base = 'app = "a"\n[http_service]\n  internal_port = 8080\n';
    await deploy(
      `opts-${suffix}`,
      `${base}  [http_service.http_options]\n    compress = true\n    idle_timeout = 600\n`,
    );
    await deploy(`bare-${suffix}`, base);
    for (const app of [`opts-${suffix}`, `bare-${suffix}`]) {
      await expect.poll(() => table.machineSeq(app, "m1")).toBeGreaterThan(0);
    }
    expect(table.lookup(`opts-${suffix}`)).toMatchObject({ compress: true, idleTimeout: 600 });
    const bare = table.lookup(`bare-${suffix}`);
    expect(bare?.compress).toBeUndefined();
    expect(bare?.idleTimeout).toBeUndefined();
  });
});
