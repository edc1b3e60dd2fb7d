// Edge apps in the proxy (issue 21), on a whole platform started by tests/platform/harness.ts:
// - edge_hello_rps / proxy_rps: keep-alive GETs of / through Hangar's proxy (services/proxy/test/load.ts
//   `measure`, concurrency 8, 3,000 per round after its own warm-up) to an edge app whose code answers
//   "Hello World\n" (fly.http.respondWith, run in the proxy's isolate) and to an app whose one machine
//   (a node one-liner, `init.exec`) answers the same bytes. One warm-up round each, then 3 rounds of
//   each, alternating; the best round (by rps) of each is reported, and their ratio.
// - edge_added_p99_ms: the edge round's p99 minus the p99 of the time-adjacent machine round (what the
//   runtime adds, or saves, against serving the same answer from a machine); the median over the rounds.
// - cold_start_ms: a new app's first edge release (the hello bundle with a unique comment, so every
//   app compiles its own code) is appended to RELEASES (its bundle already in the hangar-edge-bundles
//   bucket); timed from just before the append to the first 200 with the hello body, asked for back
//   to back through the proxy. 10 apps one after the other; the median is reported, max in the table.
import { createHash } from "node:crypto";
import { Agent, request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { EDGE_BUNDLES_BUCKET, edgeBundleName } from "@hangar/config";
import { releaseDecider, releasesStream } from "@hangar/domain";
import { CommandHandler, EventStore } from "@hangar/eventstore";
import { Objm } from "@nats-io/obj";
import { type Measurement, measure } from "../../services/proxy/test/load.js";
import { helloConfig, startTestPlatform, type TestPlatform, viaProxy } from "../platform/harness.js";
import { percentile, printTable, round } from "./stats.js";

const ROUNDS = 3;
const REQUESTS = 3_000;
const HTTP_CONCURRENCY = 8;
const COLD_STARTS = 10;
const HELLO = "Hello World\n";
const MACHINE_SERVER = `require("node:http").createServer((req, res) => {
  res.setHeader("content-type", "text/plain");
  res.end(${JSON.stringify(HELLO)});
}).listen(Number(process.env.PORT || 8080), "0.0.0.0");`;
const helloBundle = (tag: string) => `// ${tag}
fly.http.respondWith(() => new Response(${JSON.stringify(HELLO)}, { headers: { "content-type": "text/plain" } }));`;

async function until(what: string, probe: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await probe().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`${what} never answered`);
}

/** Appends an edge release of `code` for `app` (its bundle stored first); resolves once appended. */
type Release = (app: string, code: string) => Promise<void>;

async function edgeReleaser(p: TestPlatform): Promise<{ release: Release; close(): Promise<void> }> {
  const nc = await p.connectNats();
  const store = await EventStore.connect(nc);
  const bucket = await new Objm(nc).open(EDGE_BUNDLES_BUCKET);
  const releases = new CommandHandler(store, releasesStream, releaseDecider);
  let n = 0;
  return {
    async release(app, code) {
      const digest = `sha256:${createHash("sha256").update(code).digest("hex")}`;
      await bucket.putBlob({ name: edgeBundleName(app, digest) }, new TextEncoder().encode(code));
      // Timed by the caller from here: the append, then the proxy's part.
      await releases.handle(
        app,
        {
          type: "CreateRelease",
          releaseId: `bench-${process.pid}-${++n}`,
          imageRef: "",
          edge: { bundleDigest: digest, cpuMs: 50, memoryMb: 128 },
          configJson: "{}",
        },
        { commandId: `bench-edge-${process.pid}-${n}` },
      );
    },
    async close() {
      store.close();
      await nc.close();
    },
  };
}

/** From just before the release's append to the first answer of its code through the proxy. */
async function coldStart(p: TestPlatform, release: Release, app: string): Promise<number> {
  await p.api.ok("POST", "/apps", { app_name: app, org_slug: "personal" });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const ask = () =>
    new Promise<boolean>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port: p.proxyPort, path: "/", agent, headers: { host: `${app}.localhost` } },
        (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (d: string) => {
            body += d;
          });
          res.on("end", () => resolve(res.statusCode === 200 && body === HELLO)).on("error", reject);
        },
      );
      req.on("error", reject).end();
    });
  try {
    const t0 = performance.now();
    const appended = release(app, helloBundle(`cold ${app}`));
    // Asked back to back from the moment of the append: the first answer of the code ends the clock.
    while (!(await ask())) {
      if (performance.now() - t0 > 30_000) throw new Error(`${app} never served its code`);
    }
    const ms = performance.now() - t0;
    await appended;
    return ms;
  } finally {
    agent.destroy();
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const p = await startTestPlatform();
  const releaser = await edgeReleaser(p);
  try {
    const machineApp = "benchmachine";
    await p.api.ok("POST", "/apps", { app_name: machineApp, org_slug: "personal" });
    const m = await p.api.ok<{ id: string }>("POST", `/apps/${machineApp}/machines`, {
      config: helloConfig({ init: { exec: ["node", "-e", MACHINE_SERVER] } }),
    });
    const waited = await p.api.call(
      "GET",
      `/apps/${machineApp}/machines/${m.id}/wait?state=started&timeout=60`,
    );
    if (waited.status !== 200) throw new Error(`the machine never started: ${JSON.stringify(waited.body)}`);
    await until("the machine through the proxy", async () => (await viaProxy(p, machineApp)).body === HELLO);

    const edgeApp = "benchedge";
    await p.api.ok("POST", "/apps", { app_name: edgeApp, org_slug: "personal" });
    await releaser.release(edgeApp, helloBundle("hello"));
    await until("the edge app through the proxy", async () => (await viaProxy(p, edgeApp)).body === HELLO);

    const load = (app: string) =>
      measure({
        url: `http://127.0.0.1:${p.proxyPort}/`,
        host: `${app}.localhost`,
        concurrency: HTTP_CONCURRENCY,
        requests: REQUESTS,
      });
    await load(machineApp);
    await load(edgeApp);
    const machineRounds: Measurement[] = [];
    const edgeRounds: Measurement[] = [];
    const added: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const viaMachine = await load(machineApp);
      const viaEdge = await load(edgeApp);
      machineRounds.push(viaMachine);
      edgeRounds.push(viaEdge);
      added.push(viaEdge.p99Ms - viaMachine.p99Ms);
    }
    const best = (rounds: Measurement[]) => rounds.reduce((a, b) => (b.rps > a.rps ? b : a));
    const proxy = best(machineRounds);
    const edge = best(edgeRounds);

    const colds: number[] = [];
    for (let i = 0; i < COLD_STARTS; i++) colds.push(await coldStart(p, releaser.release, `benchcold${i}`));

    const result = {
      edge_hello_rps: round(edge.rps),
      proxy_rps: round(proxy.rps),
      edge_to_proxy: round(edge.rps / proxy.rps, 2),
      edge_added_p99_ms: round(percentile(added, 50), 2),
      cold_start_ms: round(percentile(colds, 50), 1),
    };
    printTable([
      [
        "edge_hello_rps",
        result.edge_hello_rps,
        `best of ${ROUNDS} rounds of ${REQUESTS} GETs, concurrency ${HTTP_CONCURRENCY}`,
      ],
      ["proxy_rps", result.proxy_rps, "the same through the proxy to a machine answering the same bytes"],
      ["edge_to_proxy", result.edge_to_proxy, "target >= 0.5"],
      ["edge_p99_ms", round(edge.p99Ms, 2), "the best edge round's p99"],
      ["proxy_p99_ms", round(proxy.p99Ms, 2), "the best machine round's p99"],
      [
        "edge_added_p99_ms",
        result.edge_added_p99_ms,
        `median over rounds of edge p99 - machine p99 (${added.map((a) => round(a, 2)).join(", ")}); target < 2`,
      ],
      [
        "cold_start_ms",
        result.cold_start_ms,
        `median of ${COLD_STARTS} new apps, release appended -> first answer; target < 50`,
      ],
      ["cold_start_max_ms", round(Math.max(...colds), 1), colds.map((c) => round(c, 1)).join(", ")],
    ]);
    return {
      edge_hello_rps: result.edge_hello_rps,
      proxy_rps: result.proxy_rps,
      edge_added_p99_ms: result.edge_added_p99_ms,
      cold_start_ms: result.cold_start_ms,
    };
  } finally {
    await releaser.close();
    await p.close();
  }
}
