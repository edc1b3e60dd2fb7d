// A capped fork bomb beside a machine answering HTTP, on one host (part of `pnpm bench machines`):
// - web_alone_p99_ms: GET / straight to a hello machine's private address and port, from 4 workers
//   that each send one request, wait for the answer and pause 5 ms (a steady load well under the
//   machine's capacity, so latency and not queueing is measured), for ALONE_S seconds.
// - web_bomb_p99_ms: the same, for BOMB_S seconds, while a second machine (shared-cpu-1x, 256 MB)
//   runs `perl -e 'fork while 1'`: every process forks for ever, so only the machine's pids.max
//   (1024) and its CPU quota (1 core of the 2) hold it. The bomb machine's pids cgroup is read every
//   200 ms: the run fails unless pids.current reached pids.max and forks were refused (pids.events
//   max), i.e. unless the bomb really ran into its cap.
// - forkbomb_p99_ratio: web_bomb_p99_ms / web_alone_p99_ms (acceptance: <= 2).
import { readFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type LimitsRef, MachineLimits } from "../../services/host-agent/src/driver/cgroup-limits.js";
import { helloConfig, type TestPlatform } from "../platform/harness.js";
import { percentile, round } from "./stats.js";

const ALONE_S = 20;
const BOMB_S = 30;
const WORKERS = 4;
const PAUSE_MS = 5;

interface RunRecord {
  privateIp: string;
  port: number;
  limits?: LimitsRef | null;
}

async function startMachine(p: TestPlatform, app: string, config: Record<string, unknown>): Promise<string> {
  await p.api.ok("POST", "/apps", { app_name: app, org_slug: "personal" });
  const m = await p.api.ok<{ id: string }>("POST", `/apps/${app}/machines`, { config });
  await p.api.ok("GET", `/apps/${app}/machines/${m.id}/wait?state=started&timeout=60`);
  return m.id;
}

async function runRecord(p: TestPlatform, id: string): Promise<RunRecord> {
  return JSON.parse(await readFile(join(p.hostStateDir, id, "run.json"), "utf8")) as RunRecord;
}

/** Latencies (ms) of GETs to `url` from WORKERS paced workers, for `seconds`. */
async function sample(url: URL, seconds: number): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: WORKERS });
  const get = () =>
    new Promise<void>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path: "/", agent }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`${url} answered ${res.statusCode}`));
        res.on("end", resolve).on("error", reject).resume();
      });
      req.on("error", reject).end();
    });
  const samples: number[] = [];
  const until = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < until) {
      const t0 = performance.now();
      await get();
      samples.push(performance.now() - t0);
      await sleep(PAUSE_MS);
    }
  };
  try {
    await Promise.all(Array.from({ length: WORKERS }, worker));
  } finally {
    agent.destroy();
  }
  return samples;
}

/** Measures the web machine alone, then beside the bomb; returns the JSON fields and the table rows. */
export async function forkBombRound(
  p: TestPlatform,
): Promise<{ result: Record<string, number>; rows: [string, string | number, string][] }> {
  const webId = await startMachine(p, "bench-bomb-web", helloConfig());
  const web = await runRecord(p, webId);
  const url = new URL(`http://${web.privateIp}:${web.port}/`);
  for (let i = 0; i < 200; i++) {
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await sleep(50);
  }
  await sample(url, 2);
  const alone = await sample(url, ALONE_S);

  const bombId = await startMachine(
    p,
    "bench-bomb",
    helloConfig({
      init: { exec: ["perl", "-e", "fork while 1"] },
      guest: { cpu_kind: "shared", cpus: 1, memory_mb: 256 },
      restart: { policy: "no" },
    }),
  );
  const bombRun = await runRecord(p, bombId);
  if (!bombRun.limits) throw new Error("the bomb machine runs without limits: run the bench as root");
  const limits = MachineLimits.fromRef(bombRun.limits);
  let peak = 0;
  let refused = 0;
  let pidsMax = 0;
  let watching = true;
  const watch = (async () => {
    while (watching) {
      const usage = limits.pidsUsage();
      if (usage) {
        peak = Math.max(peak, usage.current);
        refused = usage.refusedForks;
        pidsMax = usage.max;
      }
      await sleep(200);
    }
  })();
  const during = await sample(url, BOMB_S);
  watching = false;
  await watch;
  await p.api.ok("POST", `/apps/bench-bomb/machines/${bombId}/stop`, { signal: "SIGKILL" });
  if (peak < pidsMax || refused === 0)
    throw new Error(`the bomb was not capped: ${peak} of pids.max ${pidsMax}, ${refused} forks refused`);

  const aloneP99 = percentile(alone, 99);
  const bombP99 = percentile(during, 99);
  const result = {
    web_alone_p99_ms: round(aloneP99, 3),
    web_bomb_p99_ms: round(bombP99, 3),
    forkbomb_p99_ratio: round(bombP99 / aloneP99, 2),
  };
  const latency = (xs: number[]) => `${round(percentile(xs, 50), 3)} / ${round(percentile(xs, 99), 3)}`;
  return {
    result,
    rows: [
      [
        "web alone p50 / p99",
        latency(alone),
        `ms, ${alone.length} GETs in ${ALONE_S} s, ${WORKERS} workers pausing ${PAUSE_MS} ms`,
      ],
      [
        "web beside bomb p50 / p99",
        latency(during),
        `ms, ${during.length} GETs in ${BOMB_S} s, fork bomb running`,
      ],
      ["forkbomb p99 ratio", result.forkbomb_p99_ratio, "beside bomb / alone (target <= 2)"],
      ["bomb pids", `${peak} / ${pidsMax}`, `peak pids.current / pids.max, ${refused} forks refused`],
    ],
  };
}
