/**
 * Issue 21's isolation acceptance, on real isolates: CPU and memory limits, apps apart from each
 * other, and nothing of the host within reach.
 */
import { afterAll, describe, expect, it, vi } from "vitest";
import { failure } from "../test/edge-error.js";
import { edgeBundleOf } from "./bundle-code.js";
import type { EdgeHttpRequest, EdgeHttpResponse } from "./contract.js";
import { MemoryEdgeHost } from "./memory-host.js";
import { EdgeRuntime } from "./runtime.js";

const text = (res: EdgeHttpResponse) => new TextDecoder().decode(res.body);
const get = (url: string): EdgeHttpRequest => ({ method: "GET", url, headers: [] });
const PROD = { appEnv: "production" as const, vars: { TOKEN: "only-for-this-app" } };

const host = new MemoryEdgeHost(async () => ({ status: 200, headers: [], body: new Uint8Array() }));
const runtime = new EdgeRuntime(host);
afterAll(() => runtime.dispose());

describe("edge isolation", () => {
  it("stops an infinite loop at its CPU limit with a 5xx while another app answers meanwhile", async () => {
    await runtime.deploy(
      "spinner",
      edgeBundleOf(`let served = 0; fly.http.respondWith(async (req) => {
        served++;
        if (req.url.endsWith("/spin")) { await null; for (;;) {} }
        return new Response("served " + served);
      })`),
      PROD,
      { cpuMs: 50 },
    );
    await runtime.deploy(
      "neighbour",
      edgeBundleOf(`fly.http.respondWith(() => new Response("neighbour"))`),
      PROD,
    );
    const order: string[] = [];
    const spin = failure(runtime.dispatch("spinner", get("http://s.test/spin"))).then((error) => {
      order.push("spinner stopped");
      return error;
    });
    // While the spinner's isolate loops on its thread, the neighbour answers request after request.
    for (let i = 0; i < 5; i++) {
      expect(text(await runtime.dispatch("neighbour", get("http://n.test/")))).toBe("neighbour");
      order.push("neighbour");
    }
    const error = await spin;
    expect([error.code, error.status]).toEqual(["cpu_limit", 503]);
    expect(order[0]).toBe("neighbour");
    expect(host.logs.some((l) => l.app === "spinner" && l.level === "error" && /CPU/.test(l.message))).toBe(
      true,
    );
    // The spinner's isolate was made again from its bundle: its state starts over.
    expect(text(await runtime.dispatch("spinner", get("http://s.test/")))).toBe("served 1");
  });

  it("stops code that loops outside any request (a timer), and serves the app again afterwards", async () => {
    await runtime.deploy(
      "timer-spinner",
      edgeBundleOf(`let served = 0; fly.http.respondWith((req) => {
        served++;
        if (req.url.endsWith("/later")) setTimeout(() => { for (;;) {} }, 1);
        return new Response("served " + served);
      })`),
      PROD,
      { cpuMs: 30 },
    );
    expect(text(await runtime.dispatch("timer-spinner", get("http://t.test/later")))).toBe("served 1");
    await vi.waitFor(
      () =>
        expect(host.logs.some((l) => l.app === "timer-spinner" && /outside a request/.test(l.message))).toBe(
          true,
        ),
      { timeout: 10_000, interval: 20 },
    );
    expect(text(await runtime.dispatch("timer-spinner", get("http://t.test/")))).toBe("served 1");
  });

  it("stops an app allocating without bound at its memory limit, and serves it again afterwards", async () => {
    await runtime.deploy(
      "hog",
      edgeBundleOf(`const kept = []; fly.http.respondWith((req) => {
        if (req.url.endsWith("/grow")) for (;;) kept.push("x".repeat(1 << 20) + kept.length);
        return new Response("kept " + kept.length);
      })`),
      PROD,
      { memoryMb: 16, cpuMs: 10_000 },
    );
    const error = await failure(runtime.dispatch("hog", get("http://h.test/grow")));
    expect([error.code, error.status]).toEqual(["memory_limit", 503]);
    expect(text(await runtime.dispatch("hog", get("http://h.test/")))).toBe("kept 0");
  });

  it("keeps apps' globals, env and caches apart", async () => {
    const code = `fly.http.respondWith(async (req) => {
      const u = new URL(req.url);
      if (u.pathname === "/write") { globalThis.shared = app.name; await fly.cache.set("key", app.name); return new Response("ok"); }
      return Response.json({ shared: globalThis.shared ?? null, cached: await fly.cache.getString("key"), env: TOKEN_OF(req) });
    }); function TOKEN_OF() { return typeof env === "undefined" ? null : env; }`;
    await runtime.deploy("left", edgeBundleOf(code), PROD);
    await runtime.deploy("right", edgeBundleOf(code), { appEnv: "production", vars: {} });
    await runtime.dispatch("left", get("http://l.test/write"));
    expect(JSON.parse(text(await runtime.dispatch("left", get("http://l.test/read"))))).toEqual({
      shared: "left",
      cached: "left",
      env: null,
    });
    expect(JSON.parse(text(await runtime.dispatch("right", get("http://r.test/read"))))).toEqual({
      shared: null,
      cached: null,
      env: null,
    });
  });

  it("takes an answer the app's code bent out of shape as bad_response, not as it is", async () => {
    await runtime.deploy(
      "bender",
      edgeBundleOf(`Object.defineProperty(Response.prototype, "status", { get: () => 1000 });
        fly.http.respondWith(() => new Response("x"))`),
      PROD,
    );
    const error = await failure(runtime.dispatch("bender", get("http://b.test/")));
    expect([error.code, error.status]).toEqual(["bad_response", 500]);
  });

  it("keeps process, require, modules, the host's files and NATS out of reach", async () => {
    await runtime.deploy(
      "prober",
      edgeBundleOf(`export default { async fetch() {
        const tried = async (f) => { try { await f(); return "reached"; } catch (e) { return "refused"; } };
        return Response.json({
          process: typeof process, require: typeof require, module: typeof module, Buffer: typeof Buffer,
          globalProcess: typeof globalThis.process, fromFunction: typeof Function("return this")().process,
          importFs: await tried(() => import("fs")),
          importNodeFs: await tried(() => import("node:fs")),
          importNats: await tried(() => import("@nats-io/transport-node")),
          hostGlobals: Object.getOwnPropertyNames(globalThis).filter((n) => n.startsWith("__hangar")),
        });
      } }`),
      PROD,
    );
    expect(JSON.parse(text(await runtime.dispatch("prober", get("http://p.test/"))))).toEqual({
      process: "undefined",
      require: "undefined",
      module: "undefined",
      Buffer: "undefined",
      globalProcess: "undefined",
      fromFunction: "undefined",
      importFs: "refused",
      importNodeFs: "refused",
      importNats: "refused",
      hostGlobals: [],
    });
    // A static import is refused when the code loads: an app is one bundle.
    const error = await failure(
      runtime.deploy("importer", edgeBundleOf(`import fs from "node:fs"; export default {}`), PROD),
    );
    expect(error.code).toBe("compile");
    expect(error.message).toContain("one bundle");
  });
});
