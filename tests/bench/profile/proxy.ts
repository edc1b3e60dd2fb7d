// `pnpm profile:proxy [label]`: a CPU profile of the proxy's hot path. examples/hello serves as the
// machine, the proxy's engine (tests/bench/profile/proxy-server.ts) runs in its own process under
// node --cpu-prof, and keep-alive GETs go through it as in `pnpm bench scale` (concurrency 8).
// Prints the functions with the most self time; with a label, writes that table to
// docs/profiles/proxy-<label>.md.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { freePort } from "@hangar/testkit";
import { measure } from "../../../services/proxy/test/load.js";

const repo = fileURLToPath(new URL("../../../", import.meta.url));
const REQUESTS = 40_000;
const CONCURRENCY = 8;
const WARMUP = 5_000;
const TOP = 25;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (name, file, line), in ms, most first. */
export function selfTimes(profile: CpuProfile): { fn: string; ms: number }[] {
  const byNode = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byNode.set(n.id, n);
  const totals = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const f = byNode.get(id)?.callFrame;
    if (f === undefined) return;
    const where = f.url ? ` ${basename(f.url)}:${f.lineNumber + 1}` : "";
    const key = `${f.functionName || "(anonymous)"}${where}`;
    totals.set(key, (totals.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return [...totals].map(([fn, ms]) => ({ fn, ms })).sort((a, b) => b.ms - a.ms);
}

async function waitListening(child: ChildProcess, what: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    child.once("message", () => resolve());
    child.once("exit", (code) => reject(new Error(`${what} exited (${code})`)));
  });
}

async function ready(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await sleep(50);
  }
  throw new Error(`${url} never answered`);
}

const label = process.argv[2];
const dir = mkdtempSync(join(tmpdir(), "hangar-proxy-prof-"));
const upstreamPort = await freePort();
const proxyPort = await freePort();
const hello = spawn(process.execPath, [join(repo, "examples/hello/server.js")], {
  env: { ...process.env, PORT: String(upstreamPort) },
  stdio: "ignore",
});
const proxy = spawn(
  process.execPath,
  [
    "--cpu-prof",
    `--cpu-prof-dir=${dir}`,
    "--conditions=source",
    "--import",
    "tsx",
    join(repo, "tests/bench/profile/proxy-server.ts"),
  ],
  {
    cwd: repo,
    env: {
      ...process.env,
      HANGAR_PROFILE_UPSTREAM: `127.0.0.1:${upstreamPort}`,
      HANGAR_PROFILE_PORT: String(proxyPort),
    },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  },
);
try {
  await waitListening(proxy, "the proxy");
  await ready(`http://127.0.0.1:${upstreamPort}/`);
  const to = { url: `http://127.0.0.1:${proxyPort}/`, host: `edge.localhost:${proxyPort}` };
  await measure({ ...to, requests: WARMUP, concurrency: CONCURRENCY });
  proxy.send("mark");
  const m = await measure({ ...to, requests: REQUESTS, concurrency: CONCURRENCY, warmup: 0 });
  const cpuUs = await new Promise<number>((resolve) => {
    proxy.once("message", (r) => resolve((r as { cpuUs: number }).cpuUs));
    proxy.send("report");
  });
  const exited = new Promise((resolve) => proxy.once("exit", resolve));
  proxy.kill("SIGTERM");
  await exited;
  const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
  if (file === undefined) throw new Error("the proxy wrote no profile");
  const times = selfTimes(JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile);
  const busy = times.filter((t) => !t.fn.startsWith("(idle)")).reduce((s, t) => s + t.ms, 0);
  const rows = times.slice(0, TOP).map((t) => {
    const share = t.fn.startsWith("(idle)") ? "" : `${((100 * t.ms) / busy).toFixed(1)} %`;
    return `| ${t.fn.replaceAll("|", "\\|")} | ${t.ms.toFixed(0)} | ${share} |`;
  });
  const table = [
    `${REQUESTS} GETs after ${WARMUP} to warm up, concurrency ${CONCURRENCY}: ${m.rps.toFixed(0)} req/s, p50 ${m.p50Ms.toFixed(3)} ms, p99 ${m.p99Ms.toFixed(3)} ms. **CPU time of the proxy per request: ${(cpuUs / 1000 / REQUESTS).toFixed(4)} ms** (user + system, measured GETs only; the profile below adds start-up and warm-up, and samples wall time, so a busy machine inflates system calls). Load: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}.`,
    "",
    "| function (self time) | ms | share of busy |",
    "|---|---|---|",
    ...rows,
  ].join("\n");
  console.log(table);
  if (label) {
    mkdirSync(join(repo, "docs/profiles"), { recursive: true });
    writeFileSync(
      join(repo, `docs/profiles/proxy-${label}.md`),
      `# Proxy CPU profile: ${label}\n\n${table}\n`,
    );
  }
} finally {
  proxy.kill("SIGKILL");
  hello.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
