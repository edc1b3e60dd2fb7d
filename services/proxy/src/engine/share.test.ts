// Several proxy workers (HANGAR_PROXY_WORKERS) each hold a part of every machine's limits: together
// they never put more requests on a machine than its hard limit, without talking to each other.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { scalingSettings } from "@hangar/config";
import { createLogger } from "@hangar/telemetry";
import { afterAll, describe, expect, it } from "vitest";
import { send, startUpstream, stopUpstreams, TestRoutes, type Upstream } from "../../test/harness.js";
import { type LimitShare, shareOf } from "./backends.js";
import { createProxy, type EdgeProxy } from "./proxy.js";

const proxies: EdgeProxy[] = [];

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await stopUpstreams();
});

describe("shareOf", () => {
  it("splits a limit over the workers so that the parts add up to it", () => {
    for (const count of [1, 2, 3, 4, 7]) {
      for (const limit of [0, 1, 2, 5, 20, 25, 101]) {
        const parts = Array.from({ length: count }, (_, index) => shareOf(limit, { index, count }));
        expect(parts.reduce((a, b) => a + b, 0)).toBe(limit);
        expect(Math.max(...parts) - Math.min(...parts)).toBeLessThanOrEqual(1);
      }
    }
    expect(shareOf(Number.POSITIVE_INFINITY, { index: 0, count: 2 })).toBe(Number.POSITIVE_INFINITY);
    expect(shareOf(7, undefined)).toBe(7);
  });
});

/** A machine that holds every request 40 ms and records the most it ever had at once. */
async function countingMachine(): Promise<{ up: Upstream; most: () => number }> {
  let now = 0;
  let most = 0;
  const up = await startUpstream("m1", (req: IncomingMessage, res: ServerResponse) => {
    now++;
    most = Math.max(most, now);
    req.resume();
    setTimeout(() => {
      now--;
      res.end("ok");
    }, 40);
  });
  return { up, most: () => most };
}

/** `count` proxies over one route table, worker i holding part i of the limits (or all, without shares). */
async function workers(
  routes: TestRoutes,
  count: number,
  shared: boolean,
  queueTimeoutMs = 10_000,
): Promise<number[]> {
  const ports: number[] = [];
  for (let index = 0; index < count; index++) {
    const share: LimitShare | undefined = shared ? { index, count } : undefined;
    const proxy = createProxy({
      routes,
      logger: createLogger("share-test", { level: "silent" }),
      queueTimeoutMs,
      ...(share ? { share } : {}),
    });
    proxies.push(proxy);
    await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    ports.push((proxy.server.address() as AddressInfo).port);
  }
  return ports;
}

/** `n` requests at once, spread round-robin over the workers (as the cluster primary hands out connections). */
function load(ports: number[], app: string, n: number): Promise<number[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) => send(ports[i % ports.length] as number, `${app}.localhost`)),
  ).then((answers) => answers.map((a) => a.status));
}

describe("limits across workers", () => {
  const HARD = 5;
  const settings = scalingSettings({
    services: [
      {
        internal_port: 8080,
        ports: [{ port: 80, handlers: ["http"] }],
        concurrency: { type: "requests", soft_limit: 2, hard_limit: HARD },
      },
    ],
  });

  it("never puts more requests on a machine than its hard limit, with 3 workers and 4 x that load", async () => {
    const routes = new TestRoutes();
    const { up, most } = await countingMachine();
    routes.set("shared", [up.backend], { settings });
    const ports = await workers(routes, 3, true);
    const statuses = await load(ports, "shared", 4 * HARD);
    expect(statuses).toEqual(Array(4 * HARD).fill(200));
    expect(most()).toBeGreaterThan(1);
    expect(most()).toBeLessThanOrEqual(HARD);
  });

  it("holds a hard limit below the worker count: a worker whose part is 0 sends the machine nothing", async () => {
    const one = scalingSettings({
      services: [
        {
          internal_port: 8080,
          ports: [{ port: 80, handlers: ["http"] }],
          concurrency: { type: "requests", soft_limit: 1, hard_limit: 1 },
        },
      ],
    });
    const routes = new TestRoutes();
    const { up, most } = await countingMachine();
    routes.set("single", [up.backend], { settings: one });
    const ports = await workers(routes, 2, true, 500);
    const statuses = await load(ports, "single", 6);
    expect(most()).toBe(1);
    // Worker 0 (part 1) serves its three one after another; worker 1 (part 0) queues its three and
    // refuses them when the queue times out, never sending one to the machine.
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 503)).toBe(true);
  });

  it("would go over it if each worker held the whole limits (what the shares prevent)", async () => {
    const routes = new TestRoutes();
    const { up, most } = await countingMachine();
    routes.set("whole", [up.backend], { settings });
    const ports = await workers(routes, 3, false);
    const statuses = await load(ports, "whole", 4 * HARD);
    expect(statuses).toEqual(Array(4 * HARD).fill(200));
    expect(most()).toBeGreaterThan(HARD);
  });
});
