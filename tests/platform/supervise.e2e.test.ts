// Acceptance 6: under `npm start` (scripts/start.ts, in a temp HANGAR_HOME on free ports), with
// steady load through the proxy on an app with a started machine, `kill -9` of nats-server and then
// of a service process. Each is restarted by npm start's supervisor (and says so), the proxy answers
// every request meanwhile, /health says not ready while NATS is away, and a machine create
// succeeds afterwards. Prints how long each took to come back.
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createNetworkTopology, type NetworkTopology } from "@hangar/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeStateDir } from "../../services/host-agent/test/harness.js";
import { ApiClient, helloConfig } from "./harness.js";
import { HeldLoad } from "./held-load.js";
import { NpmStart, npmStartEnv } from "./npm-start.js";

const home = mkdtempSync(join(tmpdir(), "hangar-supervise-"));
// As root, Postgres (if a service ever needs it) runs as the postgres user, which must enter it.
chmodSync(home, 0o755);
const app = "steady";
let run: NpmStart;
let api: ApiClient;
let local: { api_url: string; proxy_url: string; token: string; monitor_url: string };
let load: HeldLoad | undefined;
// The host agent's network (machine routes, firewall) lives in a namespace of this test's own.
let topology: NetworkTopology | undefined;

/** Waits until `check` holds, polling; fails after a generous bound with what it waited for. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${run.output}`);
    }
    if (run.child.exitCode !== null) {
      throw new Error(`npm start exited while waiting for ${what}:\n${run.output}`);
    }
    await sleep(25);
  }
}

/** What a service's command line holds: its sources through tsx, or its bundle (HANGAR_RUN_FROM=dist). */
const placementMain = [
  join("services", "placement", "src", "main.ts"),
  join("services", "placement", "bundle", "main.mjs"),
];

/** The pid of this npm start's process whose command line contains `needle` (or one of them). */
function pidOf(needles: string | string[]): number {
  const wanted = typeof needles === "string" ? [needles] : needles;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      const env = readFileSync(`/proc/${entry}/environ`, "utf8");
      if (wanted.some((n) => cmdline.includes(n)) && `\0${env}`.includes(`\0HANGAR_HOME=${home}\0`))
        return Number(entry);
    } catch {
      // Gone while we looked.
    }
  }
  throw new Error(`no process of this npm start runs ${wanted.join(" or ")}`);
}

async function healthStatus(url: string): Promise<number> {
  return fetch(url, { signal: AbortSignal.timeout(1_000) }).then(
    (r) => r.status,
    () => 0,
  );
}

/** Creates a machine of examples/hello and waits until it is started. */
async function createMachine(): Promise<string> {
  const created = await api.call<{ id: string }>("POST", `/apps/${app}/machines`, { config: helloConfig() });
  expect(created.status, JSON.stringify(created.body)).toBe(200);
  const id = created.body.id;
  const wait = await api.call("GET", `/apps/${app}/machines/${id}/wait?state=started&timeout=30`);
  expect(wait.status, JSON.stringify(wait.body)).toBe(200);
  return id;
}

beforeAll(async () => {
  topology = await createNetworkTopology({ hosts: 1 });
  run = new NpmStart(await npmStartEnv(home, topology.hosts[0] as NetworkTopology["hosts"][0]));
  await run.running(120_000);
  local = JSON.parse(readFileSync(join(home, "local.json"), "utf8"));
  api = new ApiClient(local.api_url, local.token);
  expect((await api.call("POST", "/apps", { app_name: app, org_slug: "personal" })).status).toBe(201);
  await createMachine();
  load = new HeldLoad({ proxyPort: Number(new URL(local.proxy_url).port), app, clients: 4, holdMs: 0 });
  await until("the first answers through the proxy", () => (load?.answers.length ?? 0) > 10);
}, 180_000);

afterAll(async () => {
  await load?.stop();
  await run?.stop();
  // The machines npm start left (they outlive it, for the next one to adopt): killed, unmounted.
  await removeStateDir(join(home, "hosts"));
  await topology?.close();
  rmSync(home, { recursive: true, force: true });
}, 60_000);

describe("npm start supervision (acceptance 6)", () => {
  it("restarts a nats-server killed with kill -9; the proxy answers throughout; /health is 503 meanwhile; a create succeeds after", async () => {
    const gatewayHealth = `${local.api_url}/health`;
    expect(await healthStatus(gatewayHealth)).toBe(200);
    const answersBefore = load?.answers.length ?? 0;
    const pid = pidOf("nats-server");

    process.kill(pid, "SIGKILL");
    const killedAt = performance.now();
    // Watch the gateway's readiness while NATS is away, until npm start says every service is ready again.
    const healthSeen = new Set<number>();
    await until("npm start to restart nats-server", async () => {
      healthSeen.add(await healthStatus(gatewayHealth));
      return run.output.includes("[hangar] nats-server restarted (pid");
    });
    const backMs = performance.now() - killedAt;
    await until("every service to be ready again", async () => {
      healthSeen.add(await healthStatus(gatewayHealth));
      return run.output.includes("[hangar] every service is ready again");
    });
    const readyMs = performance.now() - killedAt;
    const id = await createMachine();
    const createdMs = performance.now() - killedAt;
    // The proxy's route table follows the MACHINES stream again: the new machine gets requests.
    const sinceMs = load?.elapsedMs() ?? 0;
    await until("the proxy to route to the new machine", () => load?.machinesSince(sinceMs).has(id) ?? false);
    const answered = (load?.answers.length ?? 0) - answersBefore;
    console.log(
      `nats-server kill -9: restarted after ${Math.round(backMs)} ms, every service ready after ${Math.round(readyMs)} ms, ` +
        `machine ${id} created and started after ${Math.round(createdMs)} ms; ` +
        `proxy answered ${answered} requests meanwhile, ${load?.failures().length} not 200; ` +
        `gateway /health statuses seen meanwhile: ${[...healthSeen].join(", ")}`,
    );

    expect(run.output).toContain("[hangar] nats-server exited (killed by SIGKILL); restarting in 250 ms");
    expect(pidOf("nats-server")).not.toBe(pid);
    expect(backMs).toBeLessThan(30_000);
    expect(load?.failures()).toEqual([]);
    expect(answered).toBeGreaterThan(0);
    expect(healthSeen).toContain(503);
  }, 120_000);

  it("restarts a service killed with kill -9 (placement); the proxy answers throughout; a create succeeds after", async () => {
    const answersBefore = load?.answers.length ?? 0;
    const pid = pidOf(placementMain);

    process.kill(pid, "SIGKILL");
    const killedAt = performance.now();
    await until("npm start to restart placement", () =>
      run.output.includes("[hangar] placement restarted (pid"),
    );
    const backMs = performance.now() - killedAt;
    const id = await createMachine();
    const createdMs = performance.now() - killedAt;
    const answered = (load?.answers.length ?? 0) - answersBefore;
    console.log(
      `placement kill -9: restarted and healthy after ${Math.round(backMs)} ms, machine ${id} created and ` +
        `started after ${Math.round(createdMs)} ms; proxy answered ${answered} requests meanwhile, ` +
        `${load?.failures().length} not 200`,
    );

    expect(run.output).toMatch(/\[hangar\] placement exited \(killed by SIGKILL\); restarting in \d+ ms/);
    expect(pidOf(placementMain)).not.toBe(pid);
    expect(backMs).toBeLessThan(60_000);
    expect(load?.failures()).toEqual([]);
    expect(answered).toBeGreaterThan(0);
  }, 120_000);
});
