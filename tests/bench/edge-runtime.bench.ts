// The edge runtime's own costs (libs/edge, issue 21), and workerd's for the same hello world: the
// figures docs/edge.md gives for choosing isolated-vm. `pnpm bench edge-runtime` (the proxy's whole
// path is `pnpm bench edge`).
// - cold_start_p50_ms / _p99_ms: EdgeRuntime.deploy of an app never seen plus its first request, timed
//   in this process; 40 apps 100 ms apart, after one deploy that builds the prelude and its code
//   cache: each takes the spare isolate (prelude run) made after the one before, and loads its bundle.
// - cold_start_no_spare_p50_ms / _p99_ms: the same with a memory limit of each app's own, so no spare
//   waits: a fresh isolate, the prelude compiled from V8's code cache and run, then the bundle.
// - dispatch_cpu_us: this process's CPU time (all threads, the isolate's included) per dispatch of the
//   hello world, 16 in flight, 20,000 dispatches; dispatch_rps the same run's rate.
// - edge_http_rps / node_http_rps / workerd_http_rps: keep-alive GETs (services/proxy/test/load.ts
//   `measure`, concurrency 8, 5,000 per round) to a Node HTTP server that dispatches to the runtime
//   (tests/bench/edge-runtime-server.ts edge), the same server answering from Node (node), and workerd
//   serving the same app; 3 rounds each, interleaved, the best round of each.
// - workerd_start_ms: workerd's process start to its first answer (it takes its workers from its
//   config at start; there is no deploy into a running process to time).
// - workerd_loop_blocks_others: one worker of a workerd process loops forever; whether another worker
//   of the same process then fails to answer within 2 s. edge_loop_blocks_others: the same with two
//   apps of one EdgeRuntime (the isolation test proves it cannot).
// workerd is the npm package (its @cloudflare/workerd-linux-64 binary), installed by this bench with npm
// into ~/.cache/hangar when missing; where it cannot be, its figures are null and the reason printed.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { EdgeRuntime, edgeBundleOf, MemoryEdgeHost } from "@hangar/edge";
import { freePort } from "@hangar/testkit";
import { type Measurement, measure } from "../../services/proxy/test/load.js";
import { percentile, printTable, round } from "./stats.js";

const HELLO = `export default { fetch() { return new Response("Hello World"); } };`;
const LOOP = `export default { fetch() { for (;;) {} } };`;
const WORKERD_VERSION = "1.20261123.1";
const COLD_STARTS = 40;
const DISPATCHES = 20_000;
const ROUNDS = 3;
const REQUESTS = 5_000;
const CONCURRENCY = 8;

const server = fileURLToPath(new URL("./edge-runtime-server.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** The workerd binary, installed from npm into ~/.cache/hangar when missing; or why there is none. */
function ensureWorkerd(): string | Error {
  if (process.platform !== "linux" || process.arch !== "x64")
    return new Error("workerd's npm binary here is linux-x64's only");
  const dir = join(homedir(), ".cache", "hangar", `workerd-${WORKERD_VERSION}`);
  const binary = join(dir, "node_modules", "@cloudflare", "workerd-linux-64", "bin", "workerd");
  if (existsSync(binary)) return binary;
  process.stderr.write(`[bench] installing workerd@${WORKERD_VERSION} with npm into ${dir}\n`);
  try {
    mkdirSync(dir, { recursive: true });
    execFileSync(
      "npm",
      ["install", "--prefix", dir, "--no-audit", "--no-fund", `workerd@${WORKERD_VERSION}`],
      {
        stdio: ["ignore", "ignore", "inherit"],
      },
    );
  } catch (error) {
    return error as Error;
  }
  return existsSync(binary) ? binary : new Error(`npm installed workerd without ${binary}`);
}

async function listening(child: ChildProcess, what: string): Promise<number> {
  let out = "";
  return new Promise((resolve, reject) => {
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const port = /^(\d+)\n/.exec(out)?.[1];
      if (port) resolve(Number(port));
    });
    child.once("exit", (code) => reject(new Error(`${what} exited (${code}) before it listened: ${out}`)));
  });
}

async function startServer(mode: "edge" | "node"): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [
      "--no-node-snapshot",
      "--conditions=source",
      "--import",
      "tsx",
      server,
      mode,
      ...(mode === "edge" ? [HELLO] : []),
    ],
    { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] },
  );
  return { port: await listening(child, `the ${mode} server`), child };
}

interface Workerd {
  child: ChildProcess;
  dir: string;
  hello: number;
  loop: number;
}

async function answers(url: string, timeoutMs: number): Promise<boolean> {
  return fetch(url, { signal: AbortSignal.timeout(timeoutMs) }).then(
    (res) => res.ok,
    () => false,
  );
}

async function startWorkerd(binary: string): Promise<{ workerd: Workerd; startMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), "hangar-bench-workerd-"));
  const [hello, loop] = [await freePort(), await freePort()];
  writeFileSync(join(dir, "hello.js"), HELLO);
  writeFileSync(join(dir, "loop.js"), LOOP);
  const worker = (file: string) =>
    `(modules = [(name = "worker", esModule = embed "${file}")], compatibilityDate = "2024-09-01")`;
  writeFileSync(
    join(dir, "config.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "hello", worker = ${worker("hello.js")}), (name = "loop", worker = ${worker("loop.js")})],
  sockets = [(name = "hello", address = "127.0.0.1:${hello}", http = (), service = "hello"),
             (name = "loop", address = "127.0.0.1:${loop}", http = (), service = "loop")],
);
`,
  );
  const t0 = performance.now();
  const child = spawn(binary, ["serve", join(dir, "config.capnp")], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  while (!(await answers(`http://127.0.0.1:${hello}/`, 1_000))) {
    if (child.exitCode !== null) throw new Error(`workerd exited (${child.exitCode})`);
    if (performance.now() - t0 > 30_000) throw new Error("workerd did not answer within 30 s");
    await sleep(2);
  }
  return { workerd: { child, dir, hello, loop }, startMs: performance.now() - t0 };
}

function stop(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

/**
 * EdgeRuntime cold starts: deploy of a new app plus its first request. `spare`: 100 ms apart, so the
 * spare isolate made after each deploy is ready for the next, as deploys seconds apart find it in the
 * proxy; otherwise each app has a memory limit of its own, for which no spare waits.
 */
async function coldStarts(spare: boolean): Promise<number[]> {
  const runtime = new EdgeRuntime(new MemoryEdgeHost());
  const env = { appEnv: "production" as const, vars: {} };
  try {
    await runtime.deploy("warm-up", edgeBundleOf(HELLO), env);
    const samples: number[] = [];
    for (let i = 0; i < COLD_STARTS; i++) {
      if (spare) await sleep(100);
      // A different bundle each time: nothing of an earlier app's compile is reused.
      const bundle = edgeBundleOf(`${HELLO}\n// app ${i}`);
      const t0 = performance.now();
      await runtime.deploy(`cold-${i}`, bundle, env, spare ? {} : { memoryMb: 129 + i });
      await runtime.dispatch(`cold-${i}`, { method: "GET", url: "http://cold.test/", headers: [] });
      samples.push(performance.now() - t0);
      runtime.remove(`cold-${i}`);
    }
    return samples;
  } finally {
    await runtime.dispose();
  }
}

/** In-process dispatches of the hello world: CPU per dispatch (all threads) and their rate. */
async function dispatchCost(): Promise<{ cpuUs: number; rps: number }> {
  const runtime = new EdgeRuntime(new MemoryEdgeHost());
  try {
    await runtime.deploy("hello", edgeBundleOf(HELLO), { appEnv: "production", vars: {} });
    const req = {
      method: "GET",
      url: "http://hello.test/",
      headers: [["host", "hello.test"]] as [string, string][],
    };
    const run = async (n: number) => {
      let sent = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (sent < n) {
            sent++;
            await runtime.dispatch("hello", req);
          }
        }),
      );
    };
    await run(2_000);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await run(DISPATCHES);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { cpuUs: (cpu.user + cpu.system) / DISPATCHES, rps: DISPATCHES / seconds };
  } finally {
    await runtime.dispose();
  }
}

/** Whether one app's endless loop keeps another app of the same EdgeRuntime from answering within 2 s. */
async function edgeLoopBlocks(): Promise<boolean> {
  const runtime = new EdgeRuntime(new MemoryEdgeHost(), { cpuMs: 10_000, memoryMb: 128, wallMs: 30_000 });
  const env = { appEnv: "production" as const, vars: {} };
  try {
    await runtime.deploy("hello", edgeBundleOf(HELLO), env);
    await runtime.deploy("loop", edgeBundleOf(LOOP), env);
    const looping = runtime
      .dispatch("loop", { method: "GET", url: "http://loop.test/", headers: [] })
      .catch(() => undefined);
    await sleep(100);
    const answered = await Promise.race([
      runtime.dispatch("hello", { method: "GET", url: "http://hello.test/", headers: [] }).then(() => true),
      sleep(2_000).then(() => false),
    ]);
    await runtime.dispose();
    await looping;
    return !answered;
  } finally {
    await runtime.dispose();
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const cold = await coldStarts(true);
  const coldNoSpare = await coldStarts(false);
  const dispatch = await dispatchCost();
  const edgeLoop = await edgeLoopBlocks();

  const binary = ensureWorkerd();
  if (binary instanceof Error) process.stderr.write(`[bench] no workerd figures: ${binary.message}\n`);
  const edge = await startServer("edge");
  const node = await startServer("node");
  let workerd: Workerd | undefined;
  let workerdStartMs: number | undefined;
  let workerdLoopBlocks: boolean | undefined;
  const best: Record<string, Measurement | undefined> = {};
  try {
    if (!(binary instanceof Error)) {
      const started = await startWorkerd(binary);
      workerd = started.workerd;
      workerdStartMs = started.startMs;
    }
    const targets: [string, string][] = [
      ["edge", `http://127.0.0.1:${edge.port}/`],
      ["node", `http://127.0.0.1:${node.port}/`],
      ...(workerd ? ([["workerd", `http://127.0.0.1:${workerd.hello}/`]] as [string, string][]) : []),
    ];
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, url] of targets) {
        const m = await measure({ url, requests: REQUESTS, concurrency: CONCURRENCY });
        if ((best[name]?.rps ?? 0) < m.rps) best[name] = m;
      }
    }
    if (workerd) {
      // The loop's request is left hanging; then the other worker of the same process is asked.
      void answers(`http://127.0.0.1:${workerd.loop}/`, 5_000);
      await sleep(100);
      workerdLoopBlocks = !(await answers(`http://127.0.0.1:${workerd.hello}/`, 2_000));
    }
  } finally {
    stop(edge.child);
    stop(node.child);
    if (workerd) {
      stop(workerd.child);
      rmSync(workerd.dir, { recursive: true, force: true });
    }
  }
  const result = {
    cold_start_p50_ms: round(percentile(cold, 50), 1),
    cold_start_p99_ms: round(percentile(cold, 99), 1),
    cold_start_no_spare_p50_ms: round(percentile(coldNoSpare, 50), 1),
    cold_start_no_spare_p99_ms: round(percentile(coldNoSpare, 99), 1),
    dispatch_cpu_us: round(dispatch.cpuUs, 1),
    dispatch_rps: round(dispatch.rps),
    edge_http_rps: round(best.edge?.rps ?? Number.NaN),
    node_http_rps: round(best.node?.rps ?? Number.NaN),
    workerd_http_rps: best.workerd ? round(best.workerd.rps) : null,
    edge_http_p99_ms: round(best.edge?.p99Ms ?? Number.NaN, 2),
    workerd_http_p99_ms: best.workerd ? round(best.workerd.p99Ms, 2) : null,
    workerd_start_ms: workerdStartMs === undefined ? null : round(workerdStartMs, 1),
    edge_loop_blocks_others: edgeLoop,
    workerd_loop_blocks_others: workerdLoopBlocks ?? null,
  };
  printTable([
    [
      "cold start p50 / p99",
      `${result.cold_start_p50_ms} / ${result.cold_start_p99_ms} ms`,
      "deploy of a new app + its first request",
    ],
    [
      "  with no spare isolate",
      `${result.cold_start_no_spare_p50_ms} / ${result.cold_start_no_spare_p99_ms} ms`,
      "a fresh isolate and the prelude run first",
    ],
    [
      "dispatch",
      `${result.dispatch_cpu_us} us CPU`,
      `per hello world, all threads; ${result.dispatch_rps}/s in process`,
    ],
    ["HTTP hello world: edge", result.edge_http_rps, "req/s, Node http + EdgeRuntime"],
    ["HTTP hello world: node", result.node_http_rps, "req/s, Node http alone"],
    ["HTTP hello world: workerd", String(result.workerd_http_rps), "req/s"],
    ["workerd start", `${result.workerd_start_ms} ms`, "process start to first answer"],
    [
      "a loop blocks other apps",
      `edge ${edgeLoop}, workerd ${workerdLoopBlocks}`,
      "one app loops forever; another asked",
    ],
  ]);
  return result;
}
