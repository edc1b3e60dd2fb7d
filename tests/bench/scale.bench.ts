// Autoscaling and the proxy's cost, on a whole platform started by tests/platform/harness.ts (nats-server
// and every service as its own process, machines are real processes of examples/hello):
// - direct_rps / proxy_rps / nginx_rps: keep-alive GETs of / (services/proxy/test/load.ts `measure`,
//   concurrency 8, 5,000 per round after its own warm-up) to one machine: straight to its address, through
//   Hangar's proxy, and through nginx (Debian's nginx-light, installed with apt-get by this bench when
//   missing) configured as a plain reverse proxy to the same machine: as many worker processes as the
//   proxy has (HANGAR_BENCH_WORKERS, default 1: nginx's worker_processes and HANGAR_PROXY_WORKERS; reported
//   as "workers"), upstream keep-alive, access log off. One warm-up round each, then 3 rounds of each,
//   interleaved; the best round (by rps) of each is reported.
// - proxy_added_p99_ms / nginx_added_p99_ms: p99 through the proxy (nginx) minus the direct p99 of the
//   time-adjacent direct round; the median over the 3 rounds.
// - wake_suspended_p99_ms / wake_stopped_p99_ms: one machine (autostart on) is suspended (stopped) through the
//   Machines API, then one GET goes through the proxy; timed from sending it to the response headers (first
//   byte). 20 of each, alternating; the proxy starts the machine and holds the request until it serves.
// - step_to_10_s: an app with one started machine and soft_limit 20 gets a step from 0 to 200 long-lived
//   connections (each a loop of GET /?hold=1000 on its own connection); timed until 10 different machines
//   have answered. The scheduler runs with its default windows (panic 6 s, stable 60 s) and creates the 9
//   clones.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "@hangar/testkit";
import { type Measurement, measure } from "../../services/proxy/test/load.js";
import {
  helloDir,
  type Scale,
  scaledHelloConfig,
  startTestPlatform,
  type TestPlatform,
  viaProxy,
} from "../platform/harness.js";
import { HeldLoad } from "../platform/held-load.js";
import { percentile, printTable, round } from "./stats.js";

const ROUNDS = 3;
const REQUESTS = 5_000;
const HTTP_CONCURRENCY = 8;
const WAKES = 20;
const STEP_CLIENTS = 200;
/** Worker processes of the proxy and of nginx alike. */
const WORKERS = Number(process.env.HANGAR_BENCH_WORKERS ?? 1);

/** The nginx binary: Debian's, installed with apt-get when missing and allowed. */
function ensureNginx(): string {
  const found = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => existsSync(p));
  if (found) return found;
  const root = process.getuid?.() === 0;
  if (!root || !existsSync("/usr/bin/apt-get")) {
    throw new Error(
      "the scale benchmark compares with nginx, which is not installed: on Debian/Ubuntu run `sudo apt-get install -y nginx-light`, on macOS `brew install nginx`",
    );
  }
  process.stderr.write("[bench] installing nginx-light with apt-get\n");
  execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "nginx-light"], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  return "/usr/sbin/nginx";
}

/** nginx as a plain reverse proxy to one upstream, in the foreground, on a free port. */
async function startNginx(
  bin: string,
  upstream: string,
  workers: number,
): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "hangar-bench-nginx-"));
  const port = await freePort();
  const conf = join(dir, "nginx.conf");
  writeFileSync(
    conf,
    `daemon off;
worker_processes ${workers};
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  upstream machine { server ${upstream}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://machine;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`,
  );
  const child: ChildProcess = spawn(bin, ["-c", conf, "-p", dir], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    const ok = await fetch(`http://127.0.0.1:${port}/`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) break;
    await sleep(50);
  }
  return {
    port,
    async stop() {
      child.kill("SIGQUIT");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function oneMachineApp(p: TestPlatform, app: string, s: Scale): Promise<string> {
  await p.api.ok("POST", "/apps", { app_name: app, org_slug: "personal" });
  const m = await p.api.ok<{ id: string }>("POST", `/apps/${app}/machines`, { config: scaledHelloConfig(s) });
  await waitState(p, app, m.id, "started");
  return m.id;
}

async function waitState(p: TestPlatform, app: string, id: string, state: string): Promise<void> {
  const res = await p.api.call("GET", `/apps/${app}/machines/${id}/wait?state=${state}&timeout=60`);
  if (res.status !== 200) throw new Error(`${id} never ${state}: ${JSON.stringify(res.body)}`);
}

/** Retries `probe` until it succeeds. */
async function until(what: string, probe: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await probe().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`${what} never answered`);
}

/** ms from sending a GET through the proxy to its response headers; throws unless 200. */
function firstByteMs(p: TestPlatform, app: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request(
      {
        host: "127.0.0.1",
        port: p.proxyPort,
        path: "/wake",
        headers: { host: `${app}.localhost:${p.proxyPort}` },
      },
      (res) => {
        const ms = performance.now() - t0;
        res.resume();
        res.on("end", () =>
          res.statusCode === 200 ? resolve(ms) : reject(new Error(`wake answered ${res.statusCode}`)),
        );
      },
    );
    req.on("error", reject).end();
  });
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
}

export async function run(): Promise<Record<string, number>> {
  const nginxBin = ensureNginx();
  const started = performance.now();
  // Machines of examples/hello: the one folder whose dir: images this platform runs.
  if (!Number.isInteger(WORKERS) || WORKERS < 1)
    throw new Error(`HANGAR_BENCH_WORKERS=${WORKERS}: not a count`);
  const p = await startTestPlatform({
    hostCpus: 256,
    hostMemoryMb: 256 * 300,
    dirImageRoots: [helloDir],
    env: { proxy: { HANGAR_PROXY_WORKERS: String(WORKERS) } },
  });
  let nginx: { port: number; stop(): Promise<void> } | undefined;
  try {
    // --- direct vs proxy vs nginx, one machine ---
    const edge = "bench-edge";
    const id = await oneMachineApp(p, edge, { soft: 1_000 });
    const runRecord = JSON.parse(readFileSync(join(p.hostStateDir, id, "run.json"), "utf8")) as {
      privateIp: string;
      port: number;
    };
    const upstream = `${runRecord.privateIp}:${runRecord.port}`;
    nginx = await startNginx(nginxBin, upstream, WORKERS);
    const direct = { url: `http://${upstream}/` };
    const proxied = { url: `http://127.0.0.1:${p.proxyPort}/`, host: `${edge}.localhost:${p.proxyPort}` };
    const viaNginx = { url: `http://127.0.0.1:${nginx.port}/`, host: `${edge}.localhost` };
    await until("the machine", async () => (await fetch(direct.url)).ok);
    await until("the proxy", async () => (await viaProxy(p, edge)).status === 200);
    const round_ = (to: { url: string; host?: string }) =>
      measure({ ...to, requests: REQUESTS, concurrency: HTTP_CONCURRENCY });
    for (const to of [direct, proxied, viaNginx]) await round_(to);
    const d: Measurement[] = [];
    const px: Measurement[] = [];
    const nx: Measurement[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      d.push(await round_(direct));
      px.push(await round_(proxied));
      nx.push(await round_(viaNginx));
    }
    await nginx.stop();
    nginx = undefined;
    const best = (ms: Measurement[]) => ms.reduce((a, b) => (b.rps > a.rps ? b : a));
    const proxyAdded = d.map((x, i) => (px[i] as Measurement).p99Ms - x.p99Ms);
    const nginxAdded = d.map((x, i) => (nx[i] as Measurement).p99Ms - x.p99Ms);

    // --- wake from suspended and from stopped ---
    const wakeApp = "bench-wake";
    const wakeId = await oneMachineApp(p, wakeApp, { soft: 1_000 });
    await until("the wake app", async () => (await viaProxy(p, wakeApp)).status === 200);
    const fromSuspended: number[] = [];
    const fromStopped: number[] = [];
    const steps: string[] = [];
    const step = (what: string) => steps.push(`${what}@${Date.now()}`);
    try {
      for (let i = 0; i < WAKES; i++) {
        step(`suspend${i}`);
        await p.api.ok("POST", `/apps/${wakeApp}/machines/${wakeId}/suspend`);
        await waitState(p, wakeApp, wakeId, "suspended");
        step("suspended");
        fromSuspended.push(await firstByteMs(p, wakeApp));
        step("woke");
        await p.api.ok("POST", `/apps/${wakeApp}/machines/${wakeId}/stop`, {
          signal: "SIGTERM",
          timeout: "5s",
        });
        await waitState(p, wakeApp, wakeId, "stopped");
        step("stopped");
        fromStopped.push(await firstByteMs(p, wakeApp));
        step("woke");
      }
    } catch (err) {
      // What the machine went through says why a wake did not hold.
      const events = await p.api.ok<{ type: string; status: string; timestamp: number }[]>(
        "GET",
        `/apps/${wakeApp}/machines/${wakeId}/events`,
      );
      const recent = events.slice(0, 12).map((e) => `${e.type}:${e.status}@${e.timestamp}`);
      throw new Error(
        `wake ${fromSuspended.length}/${fromStopped.length} failed: ${(err as Error).message}; events (newest first): ${recent.join(" ")}; steps: ${steps.slice(-8).join(" ")}`,
      );
    }

    // --- a step from 0 to 200 connections, until 10 machines serve ---
    const stepApp = "bench-step";
    await oneMachineApp(p, stepApp, { soft: 20 });
    await until("the step app", async () => (await viaProxy(p, stepApp)).status === 200);
    const load = new HeldLoad({ proxyPort: p.proxyPort, app: stepApp, clients: STEP_CLIENTS, holdMs: 1_000 });
    let stepS = Number.NaN;
    try {
      const deadline = performance.now() + 120_000;
      while (performance.now() < deadline) {
        if (load.machinesSince(0).size >= 10) {
          stepS = load.elapsedMs() / 1000;
          break;
        }
        await sleep(20);
      }
    } finally {
      await load.stop();
    }
    if (Number.isNaN(stepS)) throw new Error("10 machines never served the step load within 120 s");
    const stepFailures = load.failures().length;

    const result = {
      workers: WORKERS,
      direct_rps: round(best(d).rps),
      proxy_rps: round(best(px).rps),
      nginx_rps: round(best(nx).rps),
      proxy_added_p99_ms: round(median(proxyAdded), 3),
      nginx_added_p99_ms: round(median(nginxAdded), 3),
      wake_suspended_p99_ms: round(percentile(fromSuspended, 99), 1),
      wake_stopped_p99_ms: round(percentile(fromStopped, 99), 1),
      step_to_10_s: round(stepS, 2),
    };
    const pairs = (xs: number[]) => xs.map((x) => round(x, 3)).join(" / ");
    const lat = (m: Measurement) => `${round(m.p50Ms, 3)} / ${round(m.p99Ms, 3)}`;
    const dist = (xs: number[]) => `${round(percentile(xs, 50), 1)} / ${round(percentile(xs, 99), 1)}`;
    printTable([
      [
        "direct rps",
        result.direct_rps,
        `req/s, GET / to ${upstream}, c=${HTTP_CONCURRENCY}, best of ${ROUNDS}`,
      ],
      [
        "proxy rps",
        result.proxy_rps,
        `req/s via Hangar's proxy, ${WORKERS} worker(s) (target >= 0.8 x nginx)`,
      ],
      ["nginx rps", result.nginx_rps, `req/s via nginx, ${WORKERS} worker(s), upstream keep-alive`],
      ["proxy / nginx", round(result.proxy_rps / result.nginx_rps, 2), "ratio"],
      ["direct p50 / p99", lat(best(d)), "ms"],
      ["proxy p50 / p99", lat(best(px)), "ms"],
      ["nginx p50 / p99", lat(best(nx)), "ms"],
      [
        "proxy added p99",
        result.proxy_added_p99_ms,
        `ms, median of ${pairs(proxyAdded)} (target <= 2 x nginx)`,
      ],
      ["nginx added p99", result.nginx_added_p99_ms, `ms, median of ${pairs(nginxAdded)}`],
      ["wake suspended p50 / p99", dist(fromSuspended), `ms to first byte, ${WAKES} wakes (target p99 < 50)`],
      ["wake stopped p50 / p99", dist(fromStopped), `ms to first byte, ${WAKES} wakes (target p99 < 500)`],
      ["step to 10 machines", result.step_to_10_s, `s, 0 -> ${STEP_CLIENTS} connections (target < 6)`],
      ["  failed answers", stepFailures, "during the step (503s or errors)"],
      ["total", round((performance.now() - started) / 1000, 1), "s until close"],
    ]);
    return result;
  } finally {
    await nginx?.stop();
    await p.close();
  }
}
