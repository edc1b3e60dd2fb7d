// Deploys carried out by the platform's release orchestrator, on a whole platform started by
// tests/platform/harness.ts (nats-server and every service as its own process; machines are real
// processes of examples/hello with an HTTP check on /healthz every second):
// - single_machine_s: one machine created through the Machines API, timed from the POST until it is
//   started with its check passing (the peer every strategy is compared with, in the same run);
// - rolling_s (max_unavailable 0.33), canary_s, bluegreen_s: a 10-machine app, under steady load through
//   the proxy (20 clients, each a loop of GET /?hold=50 on its own keep-alive connection), gets a new
//   release (another GREETING) with the strategy; timed from the release's POST until it succeeded
//   (every new machine healthy, every old one drained and destroyed);
// - failed_requests: answers that were not a 200 from a machine, over all three deploys.
// Targets: failed_requests = 0; bluegreen_s <= 3 x single_machine_s; rolling_s <= 5 x single_machine_s.
import { setTimeout as sleep } from "node:timers/promises";
import { helloDir, startTestPlatform, type TestPlatform } from "../platform/harness.js";
import { HeldLoad } from "../platform/held-load.js";
import { printTable, round } from "./stats.js";

const MACHINES = 10;
const CLIENTS = 20;
const app = "deploybench";
const image = `dir:${helloDir}`;

function appConfig(greeting: string): Record<string, unknown> {
  return {
    app,
    env: { GREETING: greeting },
    http_service: {
      internal_port: 8080,
      auto_stop_machines: "off",
      min_machines_running: 0,
      max_machines_running: 40,
      concurrency: { type: "connections", soft_limit: 20 },
      checks: [{ path: "/healthz", interval: "1s", timeout: "1s", grace_period: "0s" }],
    },
  };
}

interface ReleaseView {
  version: number;
  status: string;
  reason: string | null;
  machine_ids: string[];
}
interface MachineView {
  id: string;
  state: string;
  checks?: { status: string }[];
  config: Record<string, unknown>;
}

async function deployed(p: TestPlatform, body: Record<string, unknown>): Promise<number> {
  const t0 = performance.now();
  const created = await p.api.ok<ReleaseView>("POST", `/apps/${app}/releases`, {
    deploy: true,
    image,
    ...body,
  });
  for (;;) {
    const r = await p.api.ok<ReleaseView>("GET", `/apps/${app}/releases/${created.version}`);
    if (r.status === "succeeded") return (performance.now() - t0) / 1000;
    if (r.status === "failed") throw new Error(`release v${r.version} failed: ${r.reason}`);
    await sleep(50);
  }
}

/** Seconds from a machine's POST until it is started with every check passing. */
async function singleMachine(p: TestPlatform, config: Record<string, unknown>): Promise<number> {
  const t0 = performance.now();
  const m = await p.api.ok<MachineView>("POST", `/apps/${app}/machines`, { config });
  for (;;) {
    const now = await p.api.ok<MachineView>("GET", `/apps/${app}/machines/${m.id}`);
    const checks = now.checks ?? [];
    if (now.state === "started" && checks.length > 0 && checks.every((c) => c.status === "passing")) {
      const s = (performance.now() - t0) / 1000;
      await p.api.ok("DELETE", `/apps/${app}/machines/${m.id}?force=true`);
      return s;
    }
    await sleep(50);
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const started = performance.now();
  const p = await startTestPlatform();
  try {
    await p.api.ok("POST", "/apps", { app_name: app, org_slug: "personal" });
    await deployed(p, { config: appConfig("v1"), strategy: "immediate" });
    const [first] = (await p.api.ok<MachineView[]>("GET", `/apps/${app}/machines`)).filter(
      (m) => m.state === "started",
    );
    if (!first) throw new Error("v1 made no machine");
    const { config } = await p.api.ok<MachineView>("GET", `/apps/${app}/machines/${first.id}`);
    await Promise.all(
      Array.from({ length: MACHINES - 1 }, () => p.api.ok("POST", `/apps/${app}/machines`, { config })),
    );
    const singles: number[] = [];
    // The peer: a lone machine of the same config (but no release metadata, so no deploy counts it).
    const lone = { ...config, metadata: {} };
    for (let i = 0; i < 3; i++) singles.push(await singleMachine(p, lone));
    const single = singles.sort((a, b) => a - b)[1] as number;

    const load = new HeldLoad({ proxyPort: p.proxyPort, app, clients: CLIENTS, holdMs: 50 });
    let rolling: number;
    let canary: number;
    let bluegreen: number;
    try {
      await sleep(2_000);
      rolling = await deployed(p, { config: appConfig("v2"), strategy: "rolling", max_unavailable: 0.33 });
      canary = await deployed(p, { config: appConfig("v3"), strategy: "canary" });
      bluegreen = await deployed(p, { config: appConfig("v4"), strategy: "bluegreen" });
    } finally {
      await load.stop();
    }
    const failed = load.failures().length;
    const result = {
      rolling_s: round(rolling, 2),
      canary_s: round(canary, 2),
      bluegreen_s: round(bluegreen, 2),
      single_machine_s: round(single, 2),
      failed_requests: failed,
    };
    printTable([
      [
        "single machine",
        result.single_machine_s,
        `s, POST to started with its check passing (median of ${singles.map((s) => round(s, 2)).join(" / ")})`,
      ],
      [
        "rolling",
        result.rolling_s,
        `s, ${MACHINES} machines, max_unavailable 0.33 (target <= 5 x single: ${round(5 * single, 2)})`,
      ],
      ["  rolling / single", round(rolling / single, 2), "ratio"],
      ["canary", result.canary_s, `s, ${MACHINES} machines, one first`],
      [
        "bluegreen",
        result.bluegreen_s,
        `s, ${MACHINES} new machines at once (target <= 3 x single: ${round(3 * single, 2)})`,
      ],
      ["  bluegreen / single", round(bluegreen / single, 2), "ratio"],
      ["failed requests", failed, `of ${load.answers.length} answers, ${CLIENTS} clients (target 0)`],
      ["total", round((performance.now() - started) / 1000, 1), "s until close"],
    ]);
    return result;
  } finally {
    await p.close();
  }
}
