// The machines stage end to end, on a whole platform started by tests/platform/harness.ts (nats-server
// and every service as its own process; one host agent with room for 300 machines):
// - create_started_p50_ms / _p99_ms: 100 creations through the Machines API of examples/hello as
//   Hangar's builder builds it (`hangar launch` + `hangar deploy`, see podman-run.ts), 4 at a time
//   (latency, not queueing on 2 cores), after 4 unmeasured ones. Each is timed from sending
//   POST /v1/apps/<app>/machines until GET .../wait?state=started, sent as soon as the POST answers,
//   returns. The table splits that time by the machine's own event timestamps (same clock): POST
//   sent -> MachineCreated (placement, gateway decision), -> MachineStarted (host agent: sees the
//   start request, spawns the process), -> wait returns (append, the gateway's catalog folds it).
//   The machines keep running (idle) until the platform closes: destroying 100 at once makes
//   placement's releases collide on the host aggregate.
// - podman_run_p50_ms / _p99_ms: `podman run -d` of the same image, 4 at a time, in rounds that
//   alternate with Hangar's (4 creates, 4 podman runs, ...); see podman-run.ts for what is timed and
//   how podman is set up. Each round's containers are removed (untimed) before the next round.
// - dir_create_started_p50_ms / _p99_ms: the same creates of a dir: machine of examples/hello (the
//   host's node and the example's folder, no image), 25 after the image rounds.
// - direct_rps / proxy_rps: keep-alive GETs of / (services/proxy/test/load.ts `measure`, concurrency
//   8, 5,000 per round after its own warm-up) to the one machine of a second app: straight to its
//   private address and port (read from the host agent's run.json), and through the proxy with Host
//   <app>.localhost. One warm-up round each, then 3 direct and 3 proxy rounds, alternating; the best
//   round (by rps) of each is reported.
// - proxy_added_p50_ms / _p99_ms: proxy minus direct p50 and p99 of each time-adjacent pair (direct
//   round i, proxy round i); the median of the 3 pairs is reported.
// - web_alone_p99_ms / web_bomb_p99_ms / forkbomb_p99_ratio: a machine's HTTP p99 alone and while a
//   capped fork bomb runs for 30 s in another machine on the same host (see forkbomb.ts).
// - hardened_start_p99_ms / plain_start_p99_ms: a machine's sandbox start with and without the
//   hardening, alternating in this process before the platform starts (see sandbox-start.ts).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type Measurement, measure } from "../../services/proxy/test/load.js";
import {
  helloConfig,
  helloDir,
  startTestPlatform,
  type TestPlatform,
  viaProxy,
} from "../platform/harness.js";
import { forkBombRound } from "./forkbomb.js";
import { BenchPodman, deployHello } from "./podman-run.js";
import { sandboxStartRound } from "./sandbox-start.js";
import { percentile, printTable, round } from "./stats.js";

const CREATES = 100;
const DIR_CREATES = 24;
const CREATE_WARMUP = 4;
const CREATE_CONCURRENCY = 4;
const ROUNDS = 3;
const REQUESTS = 5_000;
const HTTP_CONCURRENCY = 8;

interface Created {
  id: string;
  totalMs: number;
  postMs: number;
  waitMs: number;
  /** Wall-clock ms from sending the POST to the MachineCreated and MachineStarted timestamps. */
  createdAtMs: number;
  startedAtMs: number;
}

/** Runs `fn` for 0..n-1, `concurrency` at a time, and returns the results in order. */
async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

async function createStarted(
  p: TestPlatform,
  app: string,
  config: Record<string, unknown> = helloConfig(),
): Promise<Created> {
  const sentAt = Date.now();
  const t0 = performance.now();
  const m = await p.api.ok<{ id: string }>("POST", `/apps/${app}/machines`, { config });
  const t1 = performance.now();
  const wait = await p.api.call("GET", `/apps/${app}/machines/${m.id}/wait?state=started&timeout=60`);
  const t2 = performance.now();
  if (wait.status !== 200)
    throw new Error(`${m.id} did not start: ${wait.status} ${JSON.stringify(wait.body)}`);
  const events = await p.api.ok<{ status: string; timestamp: number }[]>(
    "GET",
    `/apps/${app}/machines/${m.id}/events`,
  );
  const at = (status: string) => {
    const e = events.find((x) => x.status === status);
    if (!e) throw new Error(`${m.id} has no ${status} event`);
    return e.timestamp - sentAt;
  };
  return {
    id: m.id,
    totalMs: t2 - t0,
    postMs: t1 - t0,
    waitMs: t2 - t1,
    createdAtMs: at("created"),
    startedAtMs: at("started"),
  };
}

/** Retries `probe` until it succeeds; the machine may not listen yet, nor the proxy know it. */
async function until(what: string, probe: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await probe().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`${what} never answered`);
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
}

export async function run(): Promise<Record<string, number>> {
  // The sandbox start with and without its hardening, first: the two drivers alone on the host, so
  // that the idle platform and its 100 machines do not add their noise to the tails compared.
  const sandbox = await sandboxStartRound();
  const started = performance.now();
  // Machines of examples/hello: the one folder whose dir: images this platform runs.
  const p = await startTestPlatform({ hostCpus: 256, hostMemoryMb: 256 * 300, dirImageRoots: [helloDir] });
  try {
    const startupS = (performance.now() - started) / 1000;

    // --- create to started, and podman run of the same image, alternating rounds ---
    const imageApp = "bench-image";
    const built = performance.now();
    const image = await deployHello(p, imageApp);
    const buildS = (performance.now() - built) / 1000;
    const imageConfig = helloConfig({ image });
    const podman = await BenchPodman.open(p, image);
    const app = "bench-create";
    await p.api.ok("POST", "/apps", { app_name: app, org_slug: "personal" });
    const creates: Created[] = [];
    const podmanRuns: number[] = [];
    let createMs = 0;
    try {
      let n = 0;
      const podmanRound = async () => {
        const names = Array.from({ length: CREATE_CONCURRENCY }, () => `hangar-bench-${n++}`);
        const times = await Promise.all(names.map((name) => podman.runDetached(name)));
        await podman.remove(names);
        return times;
      };
      await pool(CREATE_WARMUP, CREATE_CONCURRENCY, () => createStarted(p, app, imageConfig));
      await podmanRound();
      for (let r = 0; r < CREATES / CREATE_CONCURRENCY; r++) {
        const t0 = performance.now();
        creates.push(
          ...(await pool(CREATE_CONCURRENCY, CREATE_CONCURRENCY, () => createStarted(p, app, imageConfig))),
        );
        createMs += performance.now() - t0;
        podmanRuns.push(...(await podmanRound()));
      }
    } finally {
      await podman.close();
    }
    const createS = createMs / 1000;
    const dirCreates = await pool(DIR_CREATES, CREATE_CONCURRENCY, () => createStarted(p, app));

    // --- direct vs through the proxy, one machine ---
    const edge = "bench-edge";
    await p.api.ok("POST", "/apps", { app_name: edge, org_slug: "personal" });
    const target = await createStarted(p, edge);
    const view = await p.api.ok<{ private_ip: string }>("GET", `/apps/${edge}/machines/${target.id}`);
    const runRecord = JSON.parse(await readFile(join(p.hostStateDir, target.id, "run.json"), "utf8")) as {
      privateIp: string;
      port: number;
    };
    if (runRecord.privateIp !== view.private_ip)
      throw new Error(`run.json says ${runRecord.privateIp}, the API ${view.private_ip}`);
    const direct = { url: `http://${runRecord.privateIp}:${runRecord.port}/` };
    const proxied = { url: `http://127.0.0.1:${p.proxyPort}/`, host: `${edge}.localhost:${p.proxyPort}` };
    await until("the machine", async () => (await fetch(direct.url)).ok);
    await until("the proxy", async () => (await viaProxy(p, edge)).status === 200);

    const round_ = (to: { url: string; host?: string }) =>
      measure({ ...to, requests: REQUESTS, concurrency: HTTP_CONCURRENCY });
    await round_(direct);
    await round_(proxied);
    const directRounds: Measurement[] = [];
    const proxyRounds: Measurement[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      directRounds.push(await round_(direct));
      proxyRounds.push(await round_(proxied));
    }
    const best = (ms: Measurement[]) => ms.reduce((a, b) => (b.rps > a.rps ? b : a));
    const addedP50 = directRounds.map((d, i) => (proxyRounds[i] as Measurement).p50Ms - d.p50Ms);
    const addedP99 = directRounds.map((d, i) => (proxyRounds[i] as Measurement).p99Ms - d.p99Ms);

    // --- a capped fork bomb beside a machine answering HTTP ---
    const bomb = await forkBombRound(p);

    const dist = (f: (c: Created) => number) => {
      const xs = creates.map(f);
      return `${round(percentile(xs, 50), 1)} / ${round(percentile(xs, 99), 1)}`;
    };
    const totals = creates.map((c) => c.totalMs);
    const dirTotals = dirCreates.map((c) => c.totalMs);
    const result = {
      create_started_p50_ms: round(percentile(totals, 50), 1),
      create_started_p99_ms: round(percentile(totals, 99), 1),
      podman_run_p50_ms: round(percentile(podmanRuns, 50), 1),
      podman_run_p99_ms: round(percentile(podmanRuns, 99), 1),
      dir_create_started_p50_ms: round(percentile(dirTotals, 50), 1),
      dir_create_started_p99_ms: round(percentile(dirTotals, 99), 1),
      direct_rps: round(best(directRounds).rps),
      proxy_rps: round(best(proxyRounds).rps),
      proxy_added_p50_ms: round(median(addedP50), 3),
      proxy_added_p99_ms: round(median(addedP99), 3),
      ...bomb.result,
      ...sandbox.result,
    };
    const pairs = (xs: number[]) => xs.map((x) => round(x, 3)).join(" / ");
    const latency = (m: Measurement) => `${round(m.p50Ms, 3)} / ${round(m.p99Ms, 3)}`;
    printTable([
      ["platform start", round(startupS, 1), "s (nats-server + 5 services)"],
      [
        "create->started p50",
        result.create_started_p50_ms,
        `ms, ${CREATES} creates of the image ${CREATE_CONCURRENCY} at a time, after ${CREATE_WARMUP} unmeasured`,
      ],
      ["hello image build", round(buildS, 1), `s (hangar launch + deploy: ${image})`],
      ["create->started p99", result.create_started_p99_ms, "ms (target < 300 and <= podman run p99)"],
      [
        "podman run -d p50 / p99",
        `${result.podman_run_p50_ms} / ${result.podman_run_p99_ms}`,
        `ms, the same image, ${podmanRuns.length} runs ${CREATE_CONCURRENCY} at a time, rounds alternating with Hangar's`,
      ],
      [
        "dir: create->started p50 / p99",
        `${result.dir_create_started_p50_ms} / ${result.dir_create_started_p99_ms}`,
        `ms, ${DIR_CREATES} creates of a dir: machine of examples/hello`,
      ],
      ["  POST answered", dist((c) => c.postMs), "ms p50 / p99"],
      ["  then wait returned", dist((c) => c.waitMs), "ms p50 / p99"],
      ["  sent->created", dist((c) => c.createdAtMs), "ms p50 / p99: placement + gateway decision"],
      ["  created->started", dist((c) => c.startedAtMs - c.createdAtMs), "ms p50 / p99: host agent"],
      [
        "  started->returned",
        dist((c) => c.totalMs - c.startedAtMs),
        "ms p50 / p99: append + catalog + HTTP",
      ],
      [
        "  creates/s",
        round(CREATES / createS, 1),
        `(${round(createS, 1)} s for ${CREATES} in Hangar's rounds, one events read each)`,
      ],
      [
        "direct rps",
        result.direct_rps,
        `req/s, GET / to ${runRecord.privateIp}:${runRecord.port}, c=${HTTP_CONCURRENCY}, best of ${ROUNDS} x ${REQUESTS}`,
      ],
      [
        "proxy rps",
        result.proxy_rps,
        `req/s, the same via the proxy (Host ${edge}.localhost), best of ${ROUNDS}`,
      ],
      ["direct p50 / p99", latency(best(directRounds)), "ms, best direct round"],
      ["proxy p50 / p99", latency(best(proxyRounds)), "ms, best proxy round"],
      ["proxy added p50", result.proxy_added_p50_ms, `ms, median of round pairs ${pairs(addedP50)}`],
      [
        "proxy added p99",
        result.proxy_added_p99_ms,
        `ms, median of round pairs ${pairs(addedP99)} (target < 1)`,
      ],
      ...bomb.rows,
      ...sandbox.rows,
      ["total", round((performance.now() - started) / 1000, 1), "s until close"],
    ]);
    return result;
  } finally {
    await p.close();
  }
}
