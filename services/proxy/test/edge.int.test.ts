// The proxy running edge apps from the RELEASES stream and the bundles bucket, with the real runtime:
// a release's code answers for its Host, a new release and a rollback take over, its failures come
// back as the proxy's refusals, and what its code reaches through the proxy (.internal, the network,
// the cache, console lines).
import { createHash, randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { edgeBundleName } from "@hangar/config";
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
  type ReleaseCommand,
  type ReleaseEvent,
  type ReleasesState,
  releaseDecider,
  releasesStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream, prefixedStream } from "@hangar/eventstore";
import { type MachineLogLine, subjects } from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { Kvm } from "@nats-io/kv";
import { type ObjectStore, Objm } from "@nats-io/obj";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { EDGE_CACHE_VALUE_MAX_BYTES, KvEdgeCache } from "../src/edge/cache.js";
import { type RunningEdgeApps, startEdgeApps } from "../src/edge/mod.js";
import { createProxy, type EdgeProxy } from "../src/engine/mod.js";
import { StreamRouteTable } from "../src/routes/route-table.js";
import { send, startUpstream, stopUpstreams, type Upstream } from "./harness.js";

const suffix = randomBytes(4).toString("hex");
const prefix = `proxyedge${suffix}`;
const streams = {
  apps: prefixedStream(appsStream, prefix),
  machines: prefixedStream(machinesStream, prefix),
  releases: prefixedStream(releasesStream, prefix),
};
const bundlesBucket = `edgebundles${suffix}`;
const cacheBucket = `edgecache${suffix}`;
const proxyId = `edge-test.${suffix}`;
const region = "local";
/** The cache bucket's size in this test: a few of the largest values. */
const CACHE_MAX_BYTES = 2 * 1024 * 1024;
const BUNDLES_MAX_BYTES = 64 * 1024 * 1024;
const SERVICE = JSON.stringify({ services: [{ internal_port: 8080, ports: [{ port: 80 }] }] });

let nc: NatsConnection;
let store: EventStore;
let routes: StreamRouteTable;
let proxy: EdgeProxy;
let edgeApps: RunningEdgeApps;
let port: number;
let bucket: ObjectStore;
let apps: CommandHandler<AppState, AppCommand, AppEvent>;
let machines: CommandHandler<MachineState, MachineCommand, MachineEvent>;
let releases: CommandHandler<ReleasesState, ReleaseCommand, ReleaseEvent>;
let origin: Upstream;
let commands = 0;
const meta = () => ({ commandId: `test-${suffix}-${++commands}` });

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  for (const s of Object.values(streams)) await ensureStream(store.jsm, s);
  apps = new CommandHandler(store, streams.apps, appDecider);
  machines = new CommandHandler(store, streams.machines, machineDecider);
  releases = new CommandHandler(store, streams.releases, releaseDecider);
  routes = await StreamRouteTable.start(store, { apps: streams.apps, machines: streams.machines });
  edgeApps = await startEdgeApps({
    nc,
    store,
    routes,
    proxyId,
    region,
    domain: "localhost",
    replicas: 1,
    logger: createLogger("proxy-edge-test", { level: "silent" }),
    releases: streams.releases,
    bundlesBucket,
    cacheBucket,
    cacheMaxBytes: CACHE_MAX_BYTES,
    bundlesMaxBytes: BUNDLES_MAX_BYTES,
  });
  // The proxy made the bundles bucket (the gateway makes it too, with the same setting).
  bucket = await new Objm(nc).open(bundlesBucket);
  proxy = createProxy({
    routes,
    region,
    edge: edgeApps.edge,
    logger: createLogger("proxy-edge-test", { level: "silent" }),
  });
  await edgeApps.listenInternal(proxy.internal);
  await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
  port = (proxy.server.address() as AddressInfo).port;
  origin = await startUpstream("origin");
  await appOnNetwork(`origin-${suffix}`, "personal");
  await machineAt(`origin-${suffix}`, "m1", origin.port);
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  await edgeApps?.stop();
  await routes?.stop();
  await stopUpstreams();
  await bucket?.destroy().catch(() => undefined);
  store?.close();
  await nc?.drain();
});

async function appOnNetwork(app: string, org: string): Promise<void> {
  await apps.handle(app, { type: "CreateApp", name: app, orgSlug: org }, meta());
}

async function machineAt(app: string, machineId: string, upstreamPort: number): Promise<void> {
  const id = machineAggregateId(app, machineId);
  await machines.handle(
    id,
    {
      type: "CreateMachine",
      machineId,
      app,
      name: machineId,
      region,
      hostId: "h1",
      instanceId: "i1",
      configJson: SERVICE,
      skipLaunch: false,
    },
    meta(),
  );
  await machines.handle(
    id,
    {
      type: "RecordStarted",
      hostId: "h1",
      pid: 1000 + commands,
      privateIp: "127.0.0.1",
      privateIpv6: "",
      port: upstreamPort,
      startTime: Date.now(),
      adopted: false,
    },
    meta(),
  );
}

/** Stores `code` as the app's bundle and appends an edge release of it; returns the digest. */
async function release(app: string, code: string, env: Record<string, string> = {}): Promise<string> {
  const digest = `sha256:${createHash("sha256").update(code).digest("hex")}`;
  await bucket.putBlob({ name: edgeBundleName(app, digest) }, new TextEncoder().encode(code));
  const done = await releases.handle(
    app,
    {
      type: "CreateRelease",
      releaseId: `r-${suffix}-${commands}`,
      imageRef: "",
      edge: { bundleDigest: digest, cpuMs: 50, memoryMb: 64 },
      configJson: JSON.stringify({ env }),
    },
    meta(),
  );
  // Until the proxy's view of RELEASES has it, the app (known from APPS) is a machine app with no
  // machine to the proxy: its answer would be the router's, not the code's.
  const version = (done.state.releases.at(-1) as { version: number }).version;
  for (let i = 0; i < 250 && edgeApps.edge.versions()[app] !== version; i++)
    await new Promise((r) => setTimeout(r, 20));
  expect(edgeApps.edge.versions()[app]).toBe(version);
  return digest;
}

/** Asks until the app answers `body` (the release reached the proxy), at most 5 s. */
async function answersWith(app: string, body: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const got = await send(port, `${app}.localhost`);
    if (got.status === 200 && got.body.toString() === body) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${app} never answered ${body}`);
}

const respond = (body: string) => `fly.http.respondWith(() => new Response(${JSON.stringify(body)}));`;

describe("edge releases in the proxy", () => {
  it("serves an app's live edge release, then a new one, then the rollback to the first", async () => {
    const app = `hello-${suffix}`;
    await appOnNetwork(app, "personal");
    const v1 = respond("one");
    await release(app, v1);
    await answersWith(app, "one");
    await release(app, respond("two"));
    await answersWith(app, "two");
    await release(app, v1);
    await answersWith(app, "one");
    expect(edgeApps.edge.versions()[app]).toBe(3);
  });

  it("gives the code the request as a machine gets it, and sends its answer with the proxy's headers", async () => {
    const app = `echo-${suffix}`;
    await appOnNetwork(app, "personal");
    await release(
      app,
      `fly.http.respondWith(async (req) => new Response(JSON.stringify({
        method: req.method, url: req.url, body: await req.text(),
        xff: req.headers.get("x-forwarded-for"), client: req.headers.get("fly-client-ip"), env: app.env,
      }), { status: 201, headers: { "x-edge": "yes" } }));`,
    );
    let got = await send(port, `${app}.localhost`);
    for (let i = 0; i < 100 && got.status !== 201; i++) {
      await new Promise((r) => setTimeout(r, 50));
      got = await send(port, `${app}.localhost`);
    }
    got = await send(port, `${app}.localhost`, { method: "POST", path: "/a?b=1", body: Buffer.from("hi") });
    expect(got.status).toBe(201);
    expect(got.headers["x-edge"]).toBe("yes");
    expect(got.headers.via).toBe("1.1 hangar");
    expect(got.headers["fly-request-id"]).toMatch(/-local$/);
    expect(got.json()).toEqual({
      method: "POST",
      url: `http://${app}.localhost/a?b=1`,
      body: "hi",
      xff: "127.0.0.1",
      client: "127.0.0.1",
      env: "production",
    });
  });

  it("answers the code's failures as the proxy's refusals: a throw 500, a loop 503 at the CPU limit", async () => {
    const thrower = `thrower-${suffix}`;
    const looper = `looper-${suffix}`;
    await appOnNetwork(thrower, "personal");
    await appOnNetwork(looper, "personal");
    await release(thrower, `fly.http.respondWith(() => { throw new Error("boom"); });`);
    await release(looper, `fly.http.respondWith(() => { for (;;) {} });`);
    let got = await send(port, `${thrower}.localhost`);
    expect(got.status).toBe(500);
    expect(got.json()).toMatchObject({ status: "uncaught" });
    got = await send(port, `${looper}.localhost`);
    expect(got.status).toBe(503);
    expect(got.json()).toMatchObject({ status: "cpu_limit" });
  });

  it("answers a first bundle that does not compile with its error, keeps the last good one serving over a bad one", async () => {
    const app = `broken-${suffix}`;
    await appOnNetwork(app, "personal");
    await release(app, "fly.http.respondWith(() => {");
    let got = await send(port, `${app}.localhost`);
    expect(got.status).toBe(500);
    expect(got.json()).toMatchObject({ status: "compile" });
    await release(app, respond("fixed"));
    await answersWith(app, "fixed");
    await release(app, "throw new Error('top level');");
    for (let i = 0; i < 100 && edgeApps.edge.versions()[app] !== 3; i++)
      await new Promise((r) => setTimeout(r, 20));
    // The bad release is live, but once it failed to load its code has not replaced the good one.
    await edgeApps.edge.settled(app);
    got = await send(port, `${app}.localhost`);
    expect(got.status).toBe(200);
    expect(got.body.toString()).toBe("fixed");
  });

  it("stops running the code once the app's live release is an image release (its machines serve)", async () => {
    const app = `back-${suffix}`;
    await appOnNetwork(app, "personal");
    await machineAt(app, "m1", origin.port);
    await release(app, respond("edge"));
    await answersWith(app, "edge");
    const v = await releases.handle(
      app,
      { type: "CreateRelease", releaseId: `r-${suffix}-img`, imageRef: "hello:1", configJson: "{}" },
      meta(),
    );
    const version = (v.state.releases.at(-1) as { version: number }).version;
    await releases.handle(app, { type: "SucceedRelease", version, machineIds: ["m1"] }, meta());
    for (let i = 0; i < 100 && edgeApps.edge.has(app); i++) await new Promise((r) => setTimeout(r, 50));
    const got = await send(port, `${app}.localhost`);
    expect(got.status).toBe(200);
    expect(got.json()).toMatchObject({ upstream: "origin" });
  });
});

describe("what an edge app reaches", () => {
  it("fetches <app>.internal through the proxy's balancing, and its own name without looping", async () => {
    const app = `router-${suffix}`;
    await appOnNetwork(app, "personal");
    await release(
      app,
      `fly.http.respondWith(async (req) => {
        const path = new URL(req.url).pathname;
        const target = path === "/self" ? "${app}.internal" : "origin-${suffix}.internal:8080";
        const res = await fetch("http://" + target + "/from-edge", { headers: { "x-hop": "edge" } });
        return new Response(res.status + " " + await res.text());
      });`,
    );
    const got = await send(port, `${app}.localhost`);
    const [status, body] = got.body.toString().split(/ (.*)/s);
    expect(status).toBe("200");
    const seen = JSON.parse(body as string) as {
      upstream: string;
      url: string;
      headers: Record<string, string>;
    };
    expect(seen).toMatchObject({ upstream: "origin", url: "/from-edge" });
    expect(seen.headers).toMatchObject({ host: `origin-${suffix}.localhost`, "x-hop": "edge" });
    // The app's own name reaches its machines (it has none), never its code again.
    const self = await send(port, `${app}.localhost`, { path: "/self" });
    expect(self.status).toBe(200);
    expect(self.body.toString()).toMatch(/^503 /);
  });

  it("cannot fetch an app of another private network, this host's NATS, loopback or a link-local address", async () => {
    const app = `prober-${suffix}`;
    const foreign = `foreign-${suffix}`;
    await appOnNetwork(app, "personal");
    await appOnNetwork(foreign, "other-org");
    await machineAt(foreign, "m1", origin.port);
    const natsPort = Number(new URL(inject("natsUrl")).port);
    await release(
      app,
      `fly.http.respondWith(async (req) => {
        const url = new URL(req.url).searchParams.get("url");
        try { const res = await fetch(url); return new Response("fetched " + res.status); }
        catch (err) { return new Response("refused " + String(err && err.message || err)); }
      });`,
    );
    const probe = async (url: string) => {
      const got = await send(port, `${app}.localhost`, { path: `/?url=${encodeURIComponent(url)}` });
      return got.body.toString();
    };
    // The same app's fetch of a neighbour does go through.
    expect(await probe(`http://origin-${suffix}.internal/`)).toBe("fetched 200");
    expect(await probe(`http://${foreign}.internal/`)).toMatch(/^refused .*private network/);
    expect(await probe(`http://127.0.0.1:${natsPort}/`)).toMatch(/^refused .*may not fetch/);
    expect(await probe(`http://localhost:${natsPort}/`)).toMatch(/^refused .*may not fetch/);
    expect(await probe(`http://[::ffff:127.0.0.1]:${natsPort}/`)).toMatch(/^refused .*may not fetch/);
    expect(await probe("http://169.254.169.254/latest/meta-data")).toMatch(/^refused .*may not fetch/);
  });

  it("does image operations in the host: a POSTed PNG comes back resized as WebP", async () => {
    const app = `images-${suffix}`;
    await appOnNetwork(app, "personal");
    await release(
      app,
      `fly.http.respondWith(async (req) => {
        const input = new Uint8Array(await req.arrayBuffer());
        const out = await fly.image.transform(input, [{ op: "resize", width: 3, height: 2, fit: "fill" }, { op: "format", format: "webp" }]);
        return new Response(out.body, { headers: { "x-size": out.width + "x" + out.height, "content-type": "image/" + out.format } });
      });`,
    );
    // A 1x1 PNG.
    const png = Buffer.from(
      "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
      "base64",
    );
    const got = await send(port, `${app}.localhost`, { method: "POST", body: png });
    expect(got.status, got.body.toString()).toBe(200);
    expect(got.headers["x-size"]).toBe("3x2");
    expect(got.headers["content-type"]).toBe("image/webp");
    expect(got.body.subarray(8, 12).toString()).toBe("WEBP");
  });

  it("keeps each app's cache its own, with TTLs, and sends console lines to the app's log subject", async () => {
    const a = `cachea-${suffix}`;
    const b = `cacheb-${suffix}`;
    const code = `fly.http.respondWith(async (req) => {
      const q = new URL(req.url).searchParams;
      if (q.get("set")) { await fly.cache.set("k", q.get("set"), Number(q.get("ttl") || 0) || undefined); console.log("set " + q.get("set")); }
      return new Response(String(await fly.cache.getString("k")));
    });`;
    await appOnNetwork(a, "personal");
    await appOnNetwork(b, "personal");
    await release(a, code);
    await release(b, code);
    const lines: MachineLogLine[] = [];
    const sub = nc.subscribe(subjects.logsOf(a, {}), {
      callback: (_e, m) => {
        lines.push(m.json());
      },
    });
    await nc.flush();
    const got = await send(port, `${a}.localhost`, { path: "/?set=apple" });
    expect(got.body.toString()).toBe("apple");
    await answersWith(b, "null");
    await send(port, `${b}.localhost`, { path: "/?set=banana&ttl=1" });
    expect((await send(port, `${a}.localhost`)).body.toString()).toBe("apple");
    expect((await send(port, `${b}.localhost`)).body.toString()).toBe("banana");
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await send(port, `${b}.localhost`)).body.toString()).toBe("null");
    for (let i = 0; i < 50 && lines.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    sub.unsubscribe();
    expect(lines[0]).toMatchObject({ app: a, region, stream: "stdout", line: "set apple" });
    expect(lines[0]?.machine_id).toBe(`edge-edge-test-${suffix}`);
  });
});

describe("the edge buckets' bounds", () => {
  it("creates the bundles bucket with its max bytes", async () => {
    const info = await store.jsm.streams.info(`OBJ_${bundlesBucket}`);
    expect(info.config.max_bytes).toBe(BUNDLES_MAX_BYTES);
  });

  it("creates the cache bucket with its max bytes, so sets past it fail instead of growing the stream", async () => {
    const info = await store.jsm.streams.info(`KV_${cacheBucket}`);
    expect(info.config.max_bytes).toBe(CACHE_MAX_BYTES);
    const cache = new KvEdgeCache(await new Kvm(nc).open(cacheBucket));
    const value = new Uint8Array(EDGE_CACHE_VALUE_MAX_BYTES);
    let stored = 0;
    let refused: unknown;
    while (refused === undefined && stored < 10) {
      await cache.set(`filler-${suffix}`, `k${stored}`, value).then(
        () => stored++,
        (err: unknown) => {
          refused = err;
        },
      );
    }
    expect(String(refused)).toMatch(/QuotaExceededError: the edge apps' cache is full/);
    expect(stored).toBeLessThan(CACHE_MAX_BYTES / EDGE_CACHE_VALUE_MAX_BYTES);
  });
});
