// Autoscaling end to end, on a whole platform (every service a real process, machines real processes of
// examples/hello): 200 long-lived connections scale an app to 10 machines and back; an app scaled to
// zero (stopped, and suspended) serves its first requests, 50 at once waking one machine; 1,000
// requests during a scale-down all succeed; the autoscaler's decisions explain themselves through the
// API and `hangar status`; killing the scheduler or the proxy mid scale-up creates no machine twice.
// The scheduler runs with short windows (panic 2 s, stable 6 s) so the test does not wait a minute.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runHangar } from "../../cli/test/run-cli.js";
import { type Scale, scaledHelloConfig, startTestPlatform, type TestPlatform, viaProxy } from "./harness.js";
import { HeldLoad } from "./held-load.js";

let p: TestPlatform;

beforeAll(async () => {
  p = await startTestPlatform({
    env: {
      scheduler: {
        HANGAR_SCHEDULER_PANIC_WINDOW_S: "2",
        HANGAR_SCHEDULER_STABLE_WINDOW_S: "6",
        HANGAR_SCHEDULER_DRAIN_TIMEOUT_S: "10",
      },
    },
  });
  writeFileSync(
    join(p.home, "local.json"),
    JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
  );
}, 120_000);

afterAll(async () => {
  await p?.close();
});

interface Machine {
  id: string;
  state: string;
  config: { metadata?: Record<string, string> };
}

interface Decision {
  id: string;
  decided_at: string;
  current: number;
  desired: number;
  reason: string;
  inputs: Record<string, number | string | boolean>;
  actions: { kind: string; machine_id: string; outcome: string; message: string }[];
}

interface Scaling {
  panic: boolean;
  decisions_total: number;
  decisions: Decision[];
}

async function createApp(app: string, machines: number, s: Scale): Promise<string[]> {
  await p.api.ok("POST", "/apps", { app_name: app, org_slug: "personal" });
  const ids: string[] = [];
  for (let i = 0; i < machines; i++) {
    const m = await p.api.ok<Machine>("POST", `/apps/${app}/machines`, { config: scaledHelloConfig(s) });
    ids.push(m.id);
  }
  for (const id of ids) {
    const res = await p.api.call("GET", `/apps/${app}/machines/${id}/wait?state=started&timeout=30`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  }
  return ids;
}

const machines = (app: string) => p.api.ok<Machine[]>("GET", `/apps/${app}/machines`);
const scaling = (app: string) => p.api.ok<Scaling>("GET", `/apps/${app}/scaling?limit=50`);

async function countIn(app: string, state: string): Promise<number> {
  return (await machines(app)).filter((m) => m.state === state).length;
}

/** Polls `probe` every 200 ms until it returns true, failing with `what` after `timeoutMs`. */
async function eventually(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Sends `n` GETs at once and returns their statuses and bodies. */
async function burst(app: string, n: number): Promise<{ status: number; body: Record<string, unknown> }[]> {
  const answers = await Promise.all(Array.from({ length: n }, () => viaProxy(p, app, "/first")));
  return answers.map((a) => ({
    status: a.status,
    body: a.status === 200 ? (JSON.parse(a.body) as Record<string, unknown>) : { error: a.body },
  }));
}

describe("autoscaling on concurrency", () => {
  it("scales to 10 machines under 200 long-lived connections, none over hard_limit, and back to min", async () => {
    const app = "surge";
    const [first] = await createApp(app, 1, { soft: 20, hard: 25, autostop: "stop", min: 1 });
    const load = new HeldLoad({ proxyPort: p.proxyPort, app, clients: 200, holdMs: 1_000 });
    try {
      await eventually("10 started machines", 60_000, async () => (await countIn(app, "started")) >= 10);
      // Each client sends again as soon as it is answered, so the spread shows within a few holds.
      const since = load.elapsedMs();
      await eventually("answers from 10 machines", 30_000, async () => load.machinesSince(since).size >= 10);
    } finally {
      await load.stop();
    }
    expect(load.failures(), JSON.stringify(load.failures().slice(0, 5))).toEqual([]);
    const busiest = Math.max(...load.answers.map((a) => a.inFlight));
    expect(busiest).toBeLessThanOrEqual(25);
    expect(busiest).toBeGreaterThan(0);
    expect(await countIn(app, "started")).toBeLessThanOrEqual(12);

    await eventually("back to min_machines_running (1)", 120_000, async () => {
      const ms = await machines(app);
      return ms.filter((m) => m.state === "started").length === 1 && ms.every((m) => m.state !== "stopping");
    });
    const ms = await machines(app);
    expect(ms.filter((m) => m.state === "stopped").length).toBe(ms.length - 1);

    // The decisions say why: the scale-up saw the 200 connections; scale-downs stopped one at a time.
    const s = await scaling(app);
    const ups = s.decisions.filter((d) => d.desired > d.current);
    const downs = s.decisions.filter((d) => d.desired < d.current);
    expect(ups.length).toBeGreaterThan(0);
    expect(Math.max(...ups.map((d) => Number(d.inputs.panic_concurrency)))).toBeGreaterThanOrEqual(100);
    expect(ups[0]?.inputs).toMatchObject({
      soft_limit: 20,
      concurrency_type: "connections",
      max_machines: 12,
    });
    expect(ups.flatMap((d) => d.actions).every((a) => a.kind === "create" || a.kind === "start")).toBe(true);
    expect(downs.length).toBeGreaterThan(0);
    for (const d of downs) {
      expect(d.reason).not.toBe("");
      expect(d.actions.map((a) => a.kind)).toEqual(["stop"]);
    }
    expect(downs.flatMap((d) => d.actions).every((a) => a.outcome === "done" || a.outcome === "kept")).toBe(
      true,
    );
    // min_machines_running held: the first machine or another, one is always left.
    expect(first).toBeDefined();

    const status = await runHangar(["status", "-a", app], { env: { HANGAR_HOME: p.home } });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain("Autoscaling");
    // The newest decisions come first: the scale-down, one machine per pass, and why.
    expect(status.stdout).toMatch(/\d+ -> 1 +stop [0-9a-f]{14} +scale down: mean 0 connections over 6 s/);
    const json = await runHangar(["status", "-a", app, "--json"], { env: { HANGAR_HOME: p.home } });
    const parsed = JSON.parse(json.stdout) as { scaling: Scaling };
    expect(parsed.scaling.decisions.length).toBeGreaterThan(0);
  }, 300_000);

  it("serves the first requests of an app scaled to zero from stopped: 50 at once start one machine", async () => {
    const app = "sleepy";
    // A high soft limit, so the 50 requests are not load enough for the autoscaler to start a second.
    await createApp(app, 2, { soft: 100, autostop: "stop", min: 0 });
    await eventually(
      "both machines stopped by autostop",
      60_000,
      async () => (await countIn(app, "stopped")) === 2,
    );
    const answers = await burst(app, 50);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(new Set(answers.map((a) => a.body.machine_id)).size).toBe(1);
    const ms = await machines(app);
    expect(ms.filter((m) => m.state === "started" || m.state === "starting").length).toBe(1);
  }, 120_000);

  it("serves the first requests from suspended: the same process resumes with its memory", async () => {
    const app = "frozen";
    await createApp(app, 1, { soft: 100, autostop: "suspend", min: 0 });
    const before = JSON.parse((await viaProxy(p, app)).body) as { pid: number; served: number };
    await eventually(
      "the machine suspended by autostop",
      60_000,
      async () => (await countIn(app, "suspended")) === 1,
    );
    const answers = await burst(app, 50);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    for (const a of answers) expect(a.body.pid).toBe(before.pid);
    expect(Math.min(...answers.map((a) => Number(a.body.served)))).toBeGreaterThan(before.served);
  }, 120_000);

  it("answers 1,000 requests sent while machines are being stopped for scale-down", async () => {
    const app = "ebb";
    await createApp(app, 4, { soft: 20, autostop: "stop", min: 1 });
    const startedAt = Date.now();
    let sent = 0;
    const statuses = new Map<number, number>();
    let stop = false;
    const client = async () => {
      while (!stop) {
        const res = await viaProxy(p, app, "/ebb").catch(() => ({ status: 0 }));
        sent++;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    };
    const clients = Array.from({ length: 6 }, client);
    await eventually("scale-down to 1 machine with 1,000 requests sent", 120_000, async () => {
      return sent >= 1_000 && (await countIn(app, "started")) === 1 && (await countIn(app, "stopping")) === 0;
    });
    stop = true;
    await Promise.all(clients);
    expect(Object.fromEntries(statuses)).toEqual({ 200: sent });
    // The stops really happened while the requests were sent.
    const downs = (await scaling(app)).decisions.filter(
      (d) => d.desired < d.current && Date.parse(d.decided_at) >= startedAt,
    );
    expect(downs.flatMap((d) => d.actions).filter((a) => a.outcome === "done").length).toBe(3);
  }, 180_000);

  it("continues a scale-up after the scheduler and the proxy are killed, creating no machine twice", async () => {
    const app = "tough";
    const [original] = await createApp(app, 1, { soft: 20, autostop: "off", min: 1 });
    const load = new HeldLoad({ proxyPort: p.proxyPort, app, clients: 200, holdMs: 1_000 });
    try {
      await eventually(
        "the first scale-up decision",
        30_000,
        async () => (await scaling(app)).decisions_total > 0,
      );
      await p.services.scheduler.kill("SIGKILL");
      await p.services.scheduler.restart();
      await p.services.proxy.kill("SIGKILL");
      await p.services.proxy.restart();
      await eventually("10 started machines", 90_000, async () => (await countIn(app, "started")) >= 10);
    } finally {
      await load.stop();
    }
    // An action's outcome is recorded once the scheduler sees its machine start, a moment after the
    // machine counts as started here: every outcome is awaited (none may stay pending), then checked.
    let s = await scaling(app);
    await eventually("every action's outcome", 30_000, async () => {
      s = await scaling(app);
      return s.decisions.flatMap((d) => d.actions).every((a) => a.outcome !== "pending");
    });
    const actions = s.decisions.flatMap((d) => d.actions);
    const created = actions.filter((a) => a.kind === "create").map((a) => a.machine_id);
    expect(new Set(created).size).toBe(created.length);
    const ms = await machines(app);
    const ids = ms.map((m) => m.id);
    // Every machine is the original or one decision's clone, and every clone exists once.
    expect(ids.sort()).toEqual([original as string, ...created].sort());
    for (const m of ms.filter((x) => x.id !== original)) {
      const decision = m.config.metadata?.hangar_scale_decision;
      expect(s.decisions.some((d) => d.id === decision && d.actions.some((a) => a.machine_id === m.id))).toBe(
        true,
      );
    }
    expect(actions.every((a) => a.outcome !== "pending")).toBe(true);
  }, 240_000);
});
