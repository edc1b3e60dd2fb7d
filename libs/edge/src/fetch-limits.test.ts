/**
 * The bridge's bound on an isolate's outbound fetches (issue 21's security review): how many may be
 * in flight at once, each holding up to EDGE_BODY_MAX_BYTES of its answer on the host.
 */
import { afterAll, describe, expect, it } from "vitest";
import {
  EDGE_FETCHES_MAX_IN_FLIGHT,
  EDGE_FETCHES_MAX_WAITING,
  EDGE_FETCHES_WAITING_MAX_BYTES,
} from "./bridge.js";
import { edgeBundleOf } from "./bundle-code.js";
import type { EdgeHttpRequest, EdgeHttpResponse } from "./contract.js";
import { MemoryEdgeHost } from "./memory-host.js";
import { EdgeRuntime } from "./runtime.js";

const text = (res: EdgeHttpResponse) => new TextDecoder().decode(res.body);
const get = (url: string): EdgeHttpRequest => ({ method: "GET", url, headers: [] });
const PROD = { appEnv: "production" as const, vars: {} };

/** Fetches wait until the test lets them go. */
const held: (() => void)[] = [];
const host = new MemoryEdgeHost(async () => {
  await new Promise<void>((resolve) => held.push(resolve));
  return { status: 200, headers: [], body: new TextEncoder().encode("origin") };
});
// Not a test of the CPU limit: a loaded machine must not stop these requests.
const runtime = new EdgeRuntime(host, { cpuMs: 2_000, memoryMb: 128, wallMs: 30_000 });
afterAll(() => runtime.dispose());

const release = async (n: number) => {
  while (held.length < n) await new Promise((resolve) => setTimeout(resolve, 10));
  // No more than the bound ever runs at once.
  expect(held.length).toBe(n);
  for (const go of held.splice(0)) go();
};

describe("the bridge's bound on fetches in flight", () => {
  it("runs at most the bound at once, the rest in order once one is done, and refuses past the waiting bound clearly", async () => {
    await runtime.deploy(
      "fan-out",
      edgeBundleOf(`fly.http.respondWith(async (req) => {
        const q = new URL(req.url).searchParams;
        const n = Number(q.get("n"));
        const big = Number(q.get("big") ?? 0);
        const body = new Uint8Array(8 * 1024 * 1024);
        const all = await Promise.allSettled([
          ...Array.from({ length: n }, (_, i) => fetch("http://origin.test/" + i).then((r) => r.text())),
          ...Array.from({ length: big }, (_, i) =>
            fetch("http://origin.test/big" + i, { method: "POST", body }).then(
              (r) => r.text(),
              async (e) => {
                await fly.cache.set("refused", e.message);
                throw e;
              },
            ),
          ),
        ]);
        return Response.json(all.map((r) => (r.status === "fulfilled" ? r.value : String(r.reason.message))));
      })`),
      PROD,
      // Its bodies are copied as they cross: room for nine of 8 MiB.
      { memoryMb: 512 },
    );
    // Past the bound: the rest wait their turn, and every fetch is answered.
    const waits = runtime.dispatch("fan-out", get(`http://f.test/?n=${EDGE_FETCHES_MAX_IN_FLIGHT + 5}`));
    await release(EDGE_FETCHES_MAX_IN_FLIGHT);
    await release(5);
    const all = JSON.parse(text(await waits)) as string[];
    expect(all).toEqual(Array.from({ length: EDGE_FETCHES_MAX_IN_FLIGHT + 5 }, () => "origin"));

    // Past the waiting bound too (here its bytes: 8 bodies of 8 MiB fill the 64 MiB): the one over
    // is refused, saying why, and the others are answered.
    expect(EDGE_FETCHES_WAITING_MAX_BYTES).toBe(64 * 1024 * 1024);
    const over = runtime.dispatch("fan-out", get(`http://f.test/?n=${EDGE_FETCHES_MAX_IN_FLIGHT}&big=9`));
    // Nothing is let go before the refusal: the 9th was refused while 50 ran and 8 waited.
    while ((await host.cacheGet("fan-out", "refused")) === undefined)
      await new Promise((resolve) => setTimeout(resolve, 10));
    await release(EDGE_FETCHES_MAX_IN_FLIGHT);
    await release(8);
    const outcomes = JSON.parse(text(await over)) as string[];
    expect(outcomes.filter((o) => o === "origin")).toHaveLength(EDGE_FETCHES_MAX_IN_FLIGHT + 8);
    expect(outcomes.filter((o) => o !== "origin")).toEqual([
      expect.stringMatching(
        new RegExp(
          `more than ${EDGE_FETCHES_MAX_IN_FLIGHT} fetches in flight and ${EDGE_FETCHES_MAX_WAITING}`,
        ),
      ),
    ]);
  });
});
