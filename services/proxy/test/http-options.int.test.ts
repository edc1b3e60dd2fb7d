// fly.toml's http_options.compress through a real proxy to real machine stand-ins: what the client
// gets (checked byte for byte with node's zlib).
// The machines' configs are made from fly.toml as a deploy makes them, and one app goes through the
// MACHINES stream on the run's nats-server to show the route table reads them.
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { type IncomingMessage, request } from "node:http";
import type { AddressInfo } from "node:net";
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
