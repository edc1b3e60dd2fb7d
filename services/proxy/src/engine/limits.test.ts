import { once } from "node:events";
import { type IncomingMessage, request, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { scalingSettings } from "@hangar/config";
import { createLogger } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { send, startUpstream, stopUpstreams, TestRoutes, type Upstream } from "../../test/harness.js";
import { createProxy, type EdgeProxy, type ProxyOptions } from "./proxy.js";
import type { SleepingMachine } from "./route-table.js";
import { WakeRefusedError, type Waker } from "./waker.js";

// A waker the test answers: it records each start and lets the test resolve or refuse it.
class FakeWaker implements Waker {
  readonly starts: Array<{ app: string; machine: SleepingMachine }> = [];
  refuse = new Set<string>();

  async start(app: string, machine: SleepingMachine): Promise<void> {
    this.starts.push({ app, machine });
    if (this.refuse.has(machine.machineId)) {
      throw new WakeRefusedError("failed_precondition", `machine ${machine.machineId} is leased`);
    }
  }
}

const routes = new TestRoutes();
const waker = new FakeWaker();
const registry = new Registry();
const proxies: EdgeProxy[] = [];
// A small queue with a short timeout for the hard limit tests, a roomy one for wake-ups.
let tight: { proxy: EdgeProxy; port: number };
let roomy: { proxy: EdgeProxy; port: number };

async function start(opts: Partial<ProxyOptions>): Promise<{ proxy: EdgeProxy; port: number }> {
  const proxy = createProxy({
    routes,
    region: "ams",
    waker,
    logger: createLogger("limits-test", { level: "silent" }),
    ...opts,
  });
  proxies.push(proxy);
  await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
  return { proxy, port: (proxy.server.address() as AddressInfo).port };
}

beforeAll(async () => {
  tight = await start({ registry, queueMax: 2, queueTimeoutMs: 300 });
  roomy = await start({ registry: new Registry(), wakeTimeoutMs: 2_000 });
});

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await stopUpstreams();
});

const get = (app: string, via = tight) => send(via.port, `${app}.localhost`);
const appStats = (app: string, via = tight) => via.proxy.stats().apps.find((a) => a.app === app);

/** Settings as a machine config with one http service states them. */
function settings(concurrency: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const s = scalingSettings({
    services: [{ internal_port: 8080, ports: [{ port: 80, handlers: ["http"] }], concurrency, ...extra }],
  });
  if (!s) throw new Error("no settings");
  return s;
}

/** An upstream that holds every request until the test lets it answer. */
async function holdingUpstream(name: string): Promise<{ up: Upstream; held: ServerResponse[] }> {
  const held: ServerResponse[] = [];
  const up = await startUpstream(name, (req, res) => {
    req.resume();
    held.push(res);
  });
  return { up, held };
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return m?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
}

describe("hard limit queue", () => {
  it("holds a request while the machine is at its hard limit and sends it when a slot frees", async () => {
    const { up, held } = await holdingUpstream("h1");
    routes.set("full", [up.backend], {
      settings: settings({ type: "requests", soft_limit: 1, hard_limit: 1 }),
    });
    const first = get("full");
    await expect.poll(() => held.length).toBe(1);
    const second = get("full");
    await expect.poll(() => appStats("full")?.queued).toBe(1);
    expect(await metric("hangar_proxy_queued", { app: "full" })).toBe(1);
    // Held, not sent: the machine never sees more than its hard limit.
    expect(up.hits).toBe(1);
    expect(appStats("full")?.backends[0]?.inFlight).toBe(1);

    held[0]?.end("one");
    expect((await first).body.toString()).toBe("one");
    await expect.poll(() => held.length).toBe(2);
    expect(appStats("full")?.queued).toBe(0);
    held[1]?.end("two");
    expect((await second).body.toString()).toBe("two");
  });

  it("answers 503 with Retry-After when the queue is full, and when the wait times out", async () => {
    const { up, held } = await holdingUpstream("h2");
    routes.set("jam", [up.backend], { settings: settings({ soft_limit: 1, hard_limit: 1 }) });
    const first = get("jam");
    await expect.poll(() => held.length).toBe(1);
    const waiting = [get("jam"), get("jam")];
    await expect.poll(() => appStats("jam")?.queued).toBe(2);

    const full = await get("jam");
    expect(full.status).toBe(503);
    expect(full.headers["retry-after"]).toBe("1");
    expect(full.json()).toEqual({
      error: "app jam has 2 requests waiting for a machine already; try again shortly",
      status: "queue_full",
    });

    for (const res of await Promise.all(waiting)) {
      expect(res.status).toBe(503);
      expect(res.headers["retry-after"]).toBe("1");
      expect(res.json().status).toBe("queue_timeout");
    }
    expect(appStats("jam")?.queued).toBe(0);
    held[0]?.end("done");
    expect((await first).status).toBe(200);
  });

  it("takes a client that leaves out of the queue", async () => {
    const { up, held } = await holdingUpstream("h3");
    routes.set("leave", [up.backend], { settings: settings({ soft_limit: 1, hard_limit: 1 }) });
    const first = get("leave");
    await expect.poll(() => held.length).toBe(1);
    const req = request({
      host: "127.0.0.1",
      port: tight.port,
      headers: { host: "leave.localhost" },
      agent: false,
    });
    req.on("error", () => {});
    req.end();
    await expect.poll(() => appStats("leave")?.queued).toBe(1);
    req.destroy();
    await expect.poll(() => appStats("leave")?.queued).toBe(0);
    held[0]?.end("done");
    await first;
    expect(up.hits).toBe(1);
  });

  it("holds an upgrade at the hard limit like a request, counting the open tunnel", async () => {
    const up = await startUpstream("ws-full");
    up.server.on("upgrade", (_req, socket: Socket) => {
      socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n");
      socket.pipe(socket);
    });
    routes.set("wsfull", [up.backend], { settings: settings({ soft_limit: 1, hard_limit: 1 }) });
    const upgrade = () => {
      const req = request({
        host: "127.0.0.1",
        port: tight.port,
        headers: { host: "wsfull.localhost", connection: "Upgrade", upgrade: "echo" },
        agent: false,
      });
      req.end();
      return once(req, "upgrade") as Promise<[IncomingMessage, Socket]>;
    };
    const [, first] = await upgrade();
    const second = upgrade();
    await expect.poll(() => appStats("wsfull")?.queued).toBe(1);
    first.destroy();
    const [res, socket] = await second;
    expect(res.statusCode).toBe(101);
    socket.destroy();
  });
});

describe("wake-up", () => {
  it("starts one machine for many requests, the suspended one first, and serves them all once it routes", async () => {
    const sleeping: SleepingMachine[] = [
      { machineId: "m1", region: "ams", status: "stopped" },
      { machineId: "m3", region: "fra", status: "suspended" },
      { machineId: "m2", region: "ams", status: "suspended" },
    ];
    routes.set("sleepy", [], { sleeping });
    const pending = Array.from({ length: 10 }, () => get("sleepy", roomy));
    await expect.poll(() => appStats("sleepy", roomy)?.queued).toBe(10);
    expect(waker.starts).toEqual([{ app: "sleepy", machine: sleeping[2] }]);
    expect(appStats("sleepy", roomy)?.waking).toBe("m2");

    const up = await startUpstream("m2");
    routes.set("sleepy", [{ ...up.backend, machineId: "m2" }], {
      sleeping: [sleeping[0], sleeping[1]] as SleepingMachine[],
    });
    for (const res of await Promise.all(pending)) expect(res.status).toBe(200);
    expect(waker.starts.filter((s) => s.app === "sleepy")).toHaveLength(1);
    expect(appStats("sleepy", roomy)?.waking).toBeUndefined();
  });

  it("tries the next machine when a start is refused, and answers 503 when none can start", async () => {
    waker.refuse = new Set(["r1", "r2"]);
    routes.set("locked", [], {
      sleeping: [
        { machineId: "r1", region: "ams", status: "stopped" },
        { machineId: "r2", region: "ams", status: "stopped" },
      ],
    });
    const res = await get("locked");
    expect(res.status).toBe(503);
    expect(res.headers["retry-after"]).toBe("1");
    expect(res.json().status).toBe("no_started_machine");
    expect(waker.starts.filter((s) => s.app === "locked").map((s) => s.machine.machineId)).toEqual([
      "r1",
      "r2",
    ]);
    expect(await metric("hangar_proxy_wakes_total", { app: "locked", result: "refused" })).toBe(2);
  });

  it("never wakes a machine when autostart is off", async () => {
    routes.set("manual", [], {
      settings: settings({}, { autostart: false }),
      sleeping: [{ machineId: "x1", region: "ams", status: "stopped" }],
    });
    const res = await get("manual");
    expect(res.status).toBe(503);
    expect(res.json().status).toBe("no_started_machine");
    expect(waker.starts.some((s) => s.app === "manual")).toBe(false);
  });

  it("wakes one more machine when every started one is over its soft limit, still serving on them", async () => {
    const { up, held } = await holdingUpstream("busy");
    routes.set("grow", [up.backend], {
      settings: settings({ soft_limit: 1 }),
      sleeping: [{ machineId: "g2", region: "ams", status: "stopped" }],
    });
    const first = get("grow");
    await expect.poll(() => held.length).toBe(1);
    expect(waker.starts.some((s) => s.app === "grow")).toBe(false);
    const second = get("grow");
    await expect.poll(() => held.length).toBe(2);
    expect(waker.starts.filter((s) => s.app === "grow").map((s) => s.machine.machineId)).toEqual(["g2"]);
    for (const res of held) res.end("ok");
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
  });
});
