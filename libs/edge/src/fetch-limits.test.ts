/**
 * The bridge's bound on an isolate's outbound fetches (issue 21's security review): how many may be
 * in flight at once, each holding up to EDGE_BODY_MAX_BYTES of its answer on the host.
 */
import { afterAll, describe, expect, it } from "vitest";
import { EDGE_FETCHES_MAX_IN_FLIGHT } from "./bridge.js";
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

describe("the bridge's bound on fetches in flight", () => {
  it("refuses a fetch past the isolate's bound clearly, and takes one again once a fetch is done", async () => {
    await runtime.deploy(
      "fan-out",
      edgeBundleOf(`fly.http.respondWith(async (req) => {
        const n = Number(new URL(req.url).searchParams.get("n"));
        const all = await Promise.allSettled(
          Array.from({ length: n }, (_, i) => fetch("http://origin.test/" + i).then((r) => r.text())),
        );
        return Response.json(all.map((r) => (r.status === "fulfilled" ? r.value : String(r.reason.message))));
      })`),
      PROD,
    );
    const over = runtime.dispatch("fan-out", get(`http://f.test/?n=${EDGE_FETCHES_MAX_IN_FLIGHT + 1}`));
    while (held.length < EDGE_FETCHES_MAX_IN_FLIGHT) await new Promise((resolve) => setTimeout(resolve, 10));
    for (const go of held.splice(0)) go();
    const outcomes = JSON.parse(text(await over)) as string[];
    expect(outcomes.filter((o) => o === "origin")).toHaveLength(EDGE_FETCHES_MAX_IN_FLIGHT);
    expect(outcomes.filter((o) => o !== "origin")).toEqual([
      expect.stringMatching(new RegExp(`more than ${EDGE_FETCHES_MAX_IN_FLIGHT} fetches in flight`)),
    ]);
    // The slots are free again.
    const again = runtime.dispatch("fan-out", get("http://f.test/?n=1"));
    while (held.length < 1) await new Promise((resolve) => setTimeout(resolve, 10));
    for (const go of held.splice(0)) go();
    expect(JSON.parse(text(await again))).toEqual(["origin"]);
  });
});
