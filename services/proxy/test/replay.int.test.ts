import { createHash, randomBytes } from "node:crypto";
import { type IncomingMessage, request, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { DEFAULT_SCALING } from "@hangar/config";
import { createLogger } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProxy, type EdgeProxy } from "../src/engine/mod.js";
import { MAX_REPLAYS, REPLAY_BODY_MAX } from "../src/engine/replay.js";
import { type Handler, send, startUpstream, stopUpstreams, TestRoutes, type Upstream } from "./harness.js";

// fly-replay through a real proxy to real HTTP servers standing in for machines.

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

const get = (app: string, opts?: Parameters<typeof send>[2]) => send(port, `${app}.localhost:${port}`, opts);

async function replays(app: string, result: string): Promise<number> {
  const m = await registry.getSingleMetric("hangar_proxy_replays_total")?.get();
  return m?.values.find((v) => v.labels.app === app && v.labels.result === result)?.value ?? 0;
}

/** A machine that answers the first time it sees a request with `fly-replay: value` (409, a body the client must not see). */
function replaysTo(value: string): Handler {
  return (req, res) => {
    req.resume();
    res.writeHead(409, { "fly-replay": value, "content-type": "text/plain" });
    res.end("replaying; this body is not for the client");
  };
}

/** Answers with the machine's name, the request and the sha256 of its body. */
const hashes: Handler = (req, res, self) => {
  const hash = createHash("sha256");
  let bytes = 0;
  req.on("data", (c: Buffer) => {
    hash.update(c);
    bytes += c.length;
  });
  req.on("end", () => {
    res.setHeader("content-type", "application/json");
    res.end(
      JSON.stringify({
        upstream: self.name,
        method: req.method,
        url: req.url,
        headers: req.headers,
        bytes,
        sha256: hash.digest("hex"),
      }),
    );
  });
};

async function machine(name: string, handler: Handler, region = "ams"): Promise<Upstream> {
  const up = await startUpstream(name, handler);
  up.backend.region = region;
  return up;
}

describe("fly-replay to another app", () => {
  it("has the request served by the app it names, with fly-replay-src, and counts it", async () => {
    const front = await machine("front-1", replaysTo("app=other;state=from-front"));
    const other = await machine("other-1", hashes, "fra");
    routes.set("front", [front.backend], { org: "acme" });
    routes.set("other", [other.backend], { org: "acme" });

    const before = Date.now() * 1000;
    const res = await get("front", { path: "/page?q=1", headers: { "x-client": "yes" } });
    expect(res.status).toBe(200);
    expect(res.headers["fly-replay"]).toBe(undefined);
    const body = res.json();
    expect(body.upstream).toBe("other-1");
    expect(body.url).toBe("/page?q=1");
    const headers = body.headers as Record<string, string>;
    expect(headers["x-client"]).toBe("yes");
    expect(headers.host).toBe(`front.localhost:${port}`);
    expect(headers["fly-request-id"]).toBe(res.headers["fly-request-id"]);
    const src = Object.fromEntries(headers["fly-replay-src"]?.split(";").map((f) => f.split("=")) ?? []);
    expect(src).toMatchObject({ instance: "front-1", region: "ams", state: "from-front" });
    expect(Number(src.t)).toBeGreaterThanOrEqual(before);
    expect(Number(src.t)).toBeLessThanOrEqual(Date.now() * 1000);
    expect([front.hits, other.hits]).toEqual([1, 1]);
    expect(await replays("front", "replayed")).toBe(1);
  });

  it("replays a POST body intact, whole or still arriving when the machine answers", async () => {
    // The first machine answers as soon as the request's head arrives, before reading its body.
    const early = await machine("post-1", (req, res) => {
      res.writeHead(409, { "fly-replay": "app=post-sink" });
      res.end();
      req.resume();
    });
    const sink = await machine("sink-1", hashes);
    routes.set("post", [early.backend], { org: "acme" });
    routes.set("post-sink", [sink.backend], { org: "acme" });

    const whole = randomBytes(200_000);
    const res = await get("post", { method: "POST", body: whole, headers: { "content-type": "x/y" } });
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({
      upstream: "sink-1",
      method: "POST",
      bytes: whole.length,
      sha256: createHash("sha256").update(whole).digest("hex"),
    });
    expect((res.json().headers as Record<string, string>)["content-type"]).toBe("x/y");

    // Chunked, and most of it sent only after the first machine has answered.
    const parts = [randomBytes(1000), randomBytes(300_000), randomBytes(7)];
    const stream = new PassThrough();
    const answered = new Promise<void>((resolve) => {
      early.server.once("request", (_req: IncomingMessage, res: ServerResponse) => res.on("finish", resolve));
    });
    const pending = get("post", { method: "POST", body: stream });
    stream.write(parts[0]);
    await answered;
    stream.write(parts[1]);
    stream.end(parts[2]);
    const late = await pending;
    expect(late.status).toBe(200);
    const all = Buffer.concat(parts);
    expect(late.json()).toMatchObject({
      upstream: "sink-1",
      bytes: all.length,
      sha256: createHash("sha256").update(all).digest("hex"),
    });
  });

  it("sends nothing on for a client that leaves while the replay waits for the body", async () => {
    const early = await machine("leave-1", (req, res) => {
      res.writeHead(409, { "fly-replay": "app=leave-sink" });
      res.end();
      req.resume();
    });
    const sink = await machine("leave-sink-1", hashes);
    routes.set("leave", [early.backend], { org: "acme" });
    routes.set("leave-sink", [sink.backend], { org: "acme" });
    const answered = new Promise<void>((resolve) => {
      early.server.once("request", (_req: IncomingMessage, res: ServerResponse) => res.on("finish", resolve));
    });
    const client = request({
      host: "127.0.0.1",
      port,
      method: "POST",
      headers: { host: `leave.localhost:${port}`, "transfer-encoding": "chunked" },
      agent: false,
    });
    client.on("error", () => {});
    client.write(randomBytes(1000));
    await answered;
    client.destroy();
    await expect
      .poll(() =>
        proxy
          .stats()
          .apps.filter((a) => a.app === "leave" || a.app === "leave-sink")
          .map((a) => [a.app, a.inFlight]),
      )
      .toEqual([["leave", 0]]);
    expect(sink.hits).toBe(0);
  });

  it("refuses to replay a body larger than it keeps, with 413, and the target gets nothing", async () => {
    const big = await machine("big-1", replaysTo("app=big-sink"));
    const sink = await machine("big-sink-1", hashes);
    routes.set("big", [big.backend], { org: "acme" });
    routes.set("big-sink", [sink.backend], { org: "acme" });

    const sized = await get("big", { method: "POST", body: randomBytes(REPLAY_BODY_MAX + 1) });
    expect(sized.status).toBe(413);
    expect(sized.json()).toEqual({
      status: "replay_body_too_large",
      error: `machine big-1 of app big asked to replay the request (fly-replay), but its body is larger than the ${REPLAY_BODY_MAX} bytes the proxy keeps to replay a request`,
    });

    const stream = new PassThrough();
    const pending = get("big", { method: "POST", body: stream });
    stream.end(randomBytes(REPLAY_BODY_MAX + 10));
    const chunked = await pending;
    expect(chunked.status).toBe(413);
    expect(chunked.json().status).toBe("replay_body_too_large");
    expect(sink.hits).toBe(0);
    expect(await replays("big", "body_too_large")).toBe(2);

    // Exactly the limit is kept and replayed.
    const limit = randomBytes(REPLAY_BODY_MAX);
    const fits = await machine("fits-1", replaysTo("app=big-sink"));
    routes.set("fits", [fits.backend], { org: "acme" });
    const ok = await get("fits", { method: "POST", body: limit });
    expect(ok.status).toBe(200);
    expect(ok.json()).toMatchObject({
      bytes: limit.length,
      sha256: createHash("sha256").update(limit).digest("hex"),
    });
  });

  it("answers 502 for an unknown app and for an app of another organization, which gets nothing", async () => {
    const evil = await machine("evil-1", replaysTo("app=bank"));
    const bank = await machine("bank-1", hashes);
    routes.set("evil", [evil.backend], { org: "mallory" });
    routes.set("bank", [bank.backend], { org: "acme" });

    const crossOrg = await get("evil");
    expect(crossOrg.status).toBe(502);
    expect(crossOrg.json()).toEqual({
      status: "replay_app_not_found",
      error:
        "machine evil-1 of app evil asked to replay the request to app bank (fly-replay), which is not an app of its organization",
    });
    expect(bank.hits).toBe(0);

    // The same answer as for an app that does not exist: nothing tells one from the other.
    const ghost = await machine("ghost-1", replaysTo("app=no-such-app"));
    routes.set("ghostly", [ghost.backend], { org: "mallory" });
    const unknown = await get("ghostly");
    expect(unknown.status).toBe(502);
    expect(unknown.json().status).toBe("replay_app_not_found");

    // An app whose organization the route table does not know replays to no other app.
    const stray = await machine("stray-1", replaysTo("app=bank"));
    routes.set("stray", [stray.backend]);
    expect((await get("stray")).json().status).toBe("replay_app_not_found");
    expect(bank.hits).toBe(0);
    expect(await replays("evil", "app_not_found")).toBe(1);
  });

  it("answers 502 for a fly-replay it cannot follow", async () => {
    const bad = await machine("bad-1", replaysTo("app=x;elsewhere=maybe"));
    routes.set("bad", [bad.backend], { org: "acme" });
    const res = await get("bad");
    expect(res.status).toBe(502);
    expect(res.json()).toEqual({
      status: "invalid_replay",
      error:
        "machine bad-1 of app bad answered with a fly-replay header the proxy cannot follow: elsewhere is maybe, not true or false",
    });
  });
});

describe("replay loops", () => {
  it("cuts off a replay back to a machine that replayed the request already", async () => {
    const ping = await machine("ping-1", replaysTo("app=pong"));
    const pong = await machine("pong-1", replaysTo("app=ping"));
    routes.set("ping", [ping.backend], { org: "acme" });
    routes.set("pong", [pong.backend], { org: "acme" });
    const res = await get("ping");
    expect(res.status).toBe(508);
    expect(res.json()).toEqual({
      status: "replay_loop",
      error:
        "replay loop: machine pong-1 of app pong asked to replay the request to app ping (fly-replay), and every machine of it that could take it had replayed it already",
    });
    expect([ping.hits, pong.hits]).toEqual([1, 1]);
    expect(await replays("pong", "loop")).toBe(1);

    const self = await machine("self-1", replaysTo("instance=self-1"));
    routes.set("self", [self.backend], { org: "acme" });
    const back = await get("self");
    expect(back.status).toBe(508);
    expect(back.json().error).toBe(
      "replay loop: machine self-1 of app self asked to replay the request to machine self-1 of app self, which had replayed it already",
    );
  });

  it(`cuts off a request replayed more than ${MAX_REPLAYS} times`, async () => {
    // Four machines each: every replay finds a machine that has not replayed the request yet.
    const tick = await Promise.all([1, 2, 3, 4].map((i) => machine(`tick-${i}`, replaysTo("app=tock"))));
    const tock = await Promise.all([1, 2, 3, 4].map((i) => machine(`tock-${i}`, replaysTo("app=tick"))));
    routes.set(
      "tick",
      tick.map((u) => u.backend),
      { org: "acme" },
    );
    routes.set(
      "tock",
      tock.map((u) => u.backend),
      { org: "acme" },
    );
    const res = await get("tick");
    expect(res.status).toBe(508);
    expect(res.json().status).toBe("replay_loop");
    expect(res.json().error).toMatch(
      new RegExp(
        `^replay loop: the request was replayed ${MAX_REPLAYS} times \\(fly-replay\\) and machine to?c?k-`,
      ),
    );
    const hits = [...tick, ...tock].reduce((n, u) => n + u.hits, 0);
    expect(hits).toBe(MAX_REPLAYS + 1);
  });
});

describe("fly-replay within an app", () => {
  // The first machine of region ams replays everything; the others answer.
  async function regional(app: string, value: string): Promise<Upstream[]> {
    const ups = [
      await machine(`${app}-ams`, replaysTo(value), "ams"),
      await machine(`${app}-sjc-1`, hashes, "sjc"),
      await machine(`${app}-sjc-2`, hashes, "sjc"),
      await machine(`${app}-ord`, hashes, "ord"),
    ];
    routes.set(
      app,
      ups.map((u) => u.backend),
      { org: "acme" },
    );
    return ups;
  }

  async function served(app: string, entry: Upstream): Promise<string> {
    // Until the proxy's balancing picks the replaying machine: the others answer directly.
    for (let i = 0; i < 200; i++) {
      const before = entry.hits;
      const res = await get(app);
      expect(res.status).toBe(200);
      if (entry.hits > before) {
        expect((res.json().headers as Record<string, string>)["fly-replay-src"]).toMatch(
          new RegExp(`^instance=${entry.name};region=ams;t=\\d+$`),
        );
        return res.json().upstream as string;
      }
    }
    throw new Error(`no request reached ${entry.name}`);
  }

  it("sends the request to a machine of the region it names", async () => {
    const [ams] = await regional("reg", "region=sjc");
    for (let i = 0; i < 5; i++) expect(await served("reg", ams as Upstream)).toMatch(/^reg-sjc-/);
  });

  it("takes the first region of a list that has a machine, any as the last resort", async () => {
    const [ams] = await regional("regs", 'region="syd,ord,sjc"');
    expect(await served("regs", ams as Upstream)).toBe("regs-ord");
    const [anyAms] = await regional("regany", 'region="syd,any"');
    expect(await served("regany", anyAms as Upstream)).not.toBe("regany-ams");
  });

  it("sends the request to the machine it names", async () => {
    const [ams] = await regional("inst", "instance=inst-sjc-2");
    for (let i = 0; i < 3; i++) expect(await served("inst", ams as Upstream)).toBe("inst-sjc-2");
  });

  it("sends the request to the machine it prefers while that one can take it", async () => {
    const [ams] = await regional("pref", "prefer_instance=pref-ord");
    for (let i = 0; i < 3; i++) expect(await served("pref", ams as Upstream)).toBe("pref-ord");
    const [self] = await regional("prefself", "prefer_instance=prefself-ams");
    expect(await served("prefself", self as Upstream)).not.toBe("prefself-ams");
  });

  it("sends it to another machine of the app with elsewhere=true", async () => {
    const [ams] = await regional("away", "elsewhere=true");
    expect(await served("away", ams as Upstream)).not.toBe("away-ams");
  });

  it("holds a replay for its machine at the hard limit without holding up requests the others can take", async () => {
    const held: ServerResponse[] = [];
    const x = await machine("hol-x", (req, res, self) => {
      req.resume();
      if (req.url === "/hold") held.push(res);
      else res.end(self.name);
    });
    const y = await machine("hol-y", (req, res, self) => {
      req.resume();
      res.end(self.name);
    });
    const front = await machine("holfront-1", (req, res) => {
      req.resume();
      res.writeHead(409, { "fly-replay": "app=hol;instance=hol-x" }).end();
    });
    routes.set("hol", [x.backend, y.backend], {
      org: "acme",
      settings: { ...DEFAULT_SCALING, hardLimit: 1 },
    });
    routes.set("holfront", [front.backend], { org: "acme" });

    const first = get("holfront", { path: "/hold" });
    await expect.poll(() => held.length).toBe(1);
    const second = get("holfront", { path: "/second" });
    await expect.poll(() => proxy.stats().apps.find((a) => a.app === "hol")?.queued).toBe(1);
    // Behind the replay held for hol-x, a request any machine may take goes to hol-y now.
    const direct = await get("hol", { path: "/direct" });
    expect(direct.body.toString()).toBe("hol-y");
    expect(held.length).toBe(1);

    held[0]?.end("held");
    expect((await first).body.toString()).toBe("held");
    const replayed = await second;
    expect(replayed.status).toBe(200);
    expect(replayed.body.toString()).toBe("hol-x");
  });

  it("answers 503 when no machine is in the region or the machine is not started", async () => {
    const [ams] = await regional("nowhere", "region=syd");
    routes.set("nowhere", [(ams as Upstream).backend], { org: "acme" });
    const res = await get("nowhere");
    expect(res.status).toBe(503);
    expect(res.json()).toEqual({
      status: "replay_target_unavailable",
      error:
        "machine nowhere-ams of app nowhere asked to replay the request to region syd (fly-replay), where app nowhere has no started machine that could take it",
    });
    const gone = await machine("gone-1", replaysTo("instance=gone-2"));
    routes.set("gone", [gone.backend], { org: "acme" });
    const missing = await get("gone");
    expect(missing.status).toBe(503);
    expect(missing.json().error).toBe(
      "machine gone-1 of app gone asked to replay the request to machine gone-2 of app gone (fly-replay), which is not a started machine of it",
    );
  });
});
