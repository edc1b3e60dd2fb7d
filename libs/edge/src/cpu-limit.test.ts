/**
 * The CPU limit against the ways around it a security review found (issue 21): requests parked to
 * share a loop's charge, requests that time out to look like progress, and a handler that works in
 * short bursts between sleeps. Each asserts the outcome (cpu_limit, the isolate stopped), never a
 * duration; the wall limits are generous so a loaded machine cannot flip them.
 */
import { afterAll, describe, expect, it, vi } from "vitest";
import { edgeBundleOf } from "./bundle-code.js";
import { EdgeError, type EdgeHttpRequest } from "./contract.js";
import { MemoryEdgeHost } from "./memory-host.js";
import { EdgeRuntime } from "./runtime.js";

const get = (url: string): EdgeHttpRequest => ({ method: "GET", url, headers: [] });
const PROD = { appEnv: "production" as const, vars: {} };

// An origin that answers at once, or after 1.5 s for /slow.
const host = new MemoryEdgeHost(async (_app, req) => {
  if (req.url.endsWith("/slow")) await new Promise((resolve) => setTimeout(resolve, 1_500));
  return { status: 200, headers: [], body: new Uint8Array() };
});
const runtime = new EdgeRuntime(host);
afterAll(() => runtime.dispose());

/** The error a dispatch ends with (undefined when it answered). */
const outcome = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (e: unknown) => (e instanceof EdgeError ? e : new EdgeError("uncaught", String(e))),
  );

const stoppedForCpu = (app: string) =>
  host.logs.some(
    (l) => l.app === app && l.level === "error" && /ms of CPU; its isolate was stopped/.test(l.message),
  );

const PARK_OR_SPIN = `fly.http.respondWith(async (req) => {
  if (req.url.endsWith("/park")) return new Promise(() => {});
  if (req.url.endsWith("/spin")) { await null; for (;;) {} }
  return new Response("ok");
})`;

describe("edge CPU limit: the ways around it are closed", () => {
  it("stops a loop whatever number of parked requests share its isolate", async () => {
    // 200 parked requests split a 100 ms limit 200 ways: the loop would have 20 s, past its 5 s wall.
    await runtime.deploy("parked", edgeBundleOf(PARK_OR_SPIN), PROD, { cpuMs: 100, wallMs: 5_000 });
    const parked = Array.from({ length: 200 }, () =>
      outcome(runtime.dispatch("parked", get("http://p.test/park"))),
    );
    const error = await outcome(runtime.dispatch("parked", get("http://p.test/spin")));
    expect(error?.code).toBe("cpu_limit");
    expect((await Promise.all(parked)).every((e) => e?.code === "cpu_limit")).toBe(true);
    expect(stoppedForCpu("parked")).toBe(true);
  });

  it("stops a loop kept company by requests that time out (their end is no progress)", async () => {
    await runtime.deploy("timeouts", edgeBundleOf(PARK_OR_SPIN), PROD, { cpuMs: 50, wallMs: 300 });
    const spin = outcome(runtime.dispatch("timeouts", get("http://t.test/spin")));
    let stop = false;
    const feeding = (async () => {
      const sent: Promise<unknown>[] = [];
      while (!stop && !stoppedForCpu("timeouts")) {
        sent.push(outcome(runtime.dispatch("timeouts", get("http://t.test/park"))));
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await Promise.all(sent);
    })();
    try {
      await vi.waitFor(() => expect(stoppedForCpu("timeouts")).toBe(true), { timeout: 10_000, interval: 20 });
    } finally {
      stop = true;
      await feeding;
      await spin;
    }
  });

  it("stops a handler that burns CPU in bursts between sleeps", async () => {
    // 3 ms of work then 12 ms asleep, for up to 5 s: a fifth of the time busy, 50 ms allowed.
    await runtime.deploy(
      "bursts",
      edgeBundleOf(`fly.http.respondWith(async () => {
        const end = Date.now() + 5000;
        while (Date.now() < end) {
          const t = Date.now();
          while (Date.now() - t < 3) {}
          await new Promise((resolve) => setTimeout(resolve, 12));
        }
        return new Response("done");
      })`),
      PROD,
      { cpuMs: 50, wallMs: 20_000 },
    );
    const error = await outcome(runtime.dispatch("bursts", get("http://b.test/")));
    expect(error?.code).toBe("cpu_limit");
    expect(stoppedForCpu("bursts")).toBe(true);
  });

  it("does not stop a request waiting on a slow fetch while the isolate answers others' work beside it", async () => {
    // 60 requests of 3 ms each answered while /wait waits: 180 ms of CPU used with it in flight,
    // none of it its own.
    await runtime.deploy(
      "waiting",
      edgeBundleOf(`fly.http.respondWith(async (req) => {
        if (req.url.endsWith("/wait")) { await fetch("http://origin.test/slow"); return new Response("waited"); }
        const t = Date.now(); while (Date.now() - t < 3) {}
        return new Response("worked");
      })`),
      PROD,
      { cpuMs: 50, wallMs: 20_000 },
    );
    const waiting = runtime.dispatch("waiting", get("http://w.test/wait"));
    for (let i = 0; i < 60; i++) await runtime.dispatch("waiting", get("http://w.test/work"));
    expect(new TextDecoder().decode((await waiting).body)).toBe("waited");
    expect(stoppedForCpu("waiting")).toBe(false);
  });
});
