// Deploys carried out by the platform's release orchestrator (in the scheduler), on an app of 4
// machines under steady load through the proxy: rolling, canary and bluegreen releases of a good
// image take over with no failed request; a release whose check fails is rolled back to the previous
// release on its own (its image, config and machine count), again with no failed request; and
// `hangar releases rollback` redeploys an earlier release. The releases list says what happened.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runHangar } from "../../cli/test/run-cli.js";
import { helloDir, startTestPlatform, type TestPlatform, viaProxy } from "./harness.js";
import { HeldLoad } from "./held-load.js";

const app = "rollouts";
const image = `dir:${helloDir}`;
let p: TestPlatform;

interface ReleaseView {
  version: number;
  status: string;
  reason: string | null;
  strategy: string;
  rolled_back_to: number | null;
  rollback_of: number | null;
  machine_ids: string[];
  deployed_by: string;
}
interface MachineView {
  id: string;
  state: string;
  config: {
    env?: Record<string, string>;
    metadata?: Record<string, string>;
    guest?: { cpu_kind?: string; cpus?: number; memory_mb?: number };
  };
}

beforeAll(async () => {
  p = await startTestPlatform();
  writeFileSync(
    join(p.home, "local.json"),
    JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
  );
  await p.api.ok("POST", "/apps", { app_name: app, org_slug: "personal" });
}, 120_000);

afterAll(async () => {
  await p?.close();
});

/** The app config (as fly.toml loads it) of a release greeting with `greeting`; `failing` adds a check that never passes. */
function appConfig(greeting: string, failing = false): Record<string, unknown> {
  return {
    app,
    env: { GREETING: greeting },
    ...(failing
      ? { checks: { db: { type: "tcp", port: 9999, interval: "1s", timeout: "1s", grace_period: "1s" } } }
      : {}),
    http_service: {
      internal_port: 8080,
      auto_stop_machines: "off",
      min_machines_running: 0,
      concurrency: { type: "connections", soft_limit: 20 },
      checks: [{ path: "/healthz", interval: "1s", timeout: "1s", grace_period: "1s" }],
    },
  };
}

async function release(body: Record<string, unknown>): Promise<ReleaseView> {
  return p.api.ok<ReleaseView>("POST", `/apps/${app}/releases`, { deploy: true, ...body });
}

/** Waits until the release ends (the platform ends it: nobody else calls). */
function ended(version: number, timeoutMs = 120_000): Promise<ReleaseView> {
  return endedOf(app, version, timeoutMs);
}

async function endedOf(name: string, version: number, timeoutMs = 120_000): Promise<ReleaseView> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await p.api.ok<ReleaseView>("GET", `/apps/${name}/releases/${version}`);
    if (r.status === "succeeded" || r.status === "failed") return r;
    if (Date.now() > until) throw new Error(`release v${version} still ${r.status} after ${timeoutMs} ms`);
    await sleep(250);
  }
}

async function live(name = app): Promise<MachineView[]> {
  const all = await p.api.ok<MachineView[]>("GET", `/apps/${name}/machines`);
  return all.filter((m) => m.state !== "destroyed" && m.state !== "destroying");
}

/** The greetings of the live machines, and the releases they belong to. */
async function fleet(): Promise<{ greetings: string[]; releases: string[] }> {
  const ms = await live();
  return {
    greetings: ms.map((m) => m.config.env?.GREETING ?? "").sort(),
    releases: [...new Set(ms.map((m) => m.config.metadata?.hangar_release ?? ""))],
  };
}

describe("the release orchestrator", () => {
  it("rolls releases out with rolling, canary and bluegreen under load, rolls a failing one back, and redeploys an earlier one", async () => {
    // v1: one machine, then three more like it (what `scale count 4` does).
    const v1 = await release({ image, config: appConfig("v1"), strategy: "immediate" });
    expect((await ended(v1.version)).status).toBe("succeeded");
    const [first] = await live();
    if (!first) throw new Error("v1 made no machine");
    for (let i = 0; i < 3; i++) {
      const { config } = await p.api.ok<MachineView>("GET", `/apps/${app}/machines/${first.id}`);
      await p.api.ok("POST", `/apps/${app}/machines`, { config });
    }
    await p.api.ok("GET", `/apps/${app}/machines/${first.id}/wait?state=started`);
    expect((await fleet()).greetings).toEqual(["v1", "v1", "v1", "v1"]);

    const load = new HeldLoad({ proxyPort: p.proxyPort, app, clients: 12, holdMs: 100 });
    try {
      const good: Array<[string, Record<string, unknown>]> = [
        ["v2", { strategy: "rolling", max_unavailable: 2 }],
        ["v3", { strategy: "canary" }],
        ["v4", { strategy: "bluegreen" }],
      ];
      for (const [greeting, how] of good) {
        const created = await release({ image, config: appConfig(greeting), wait_timeout: 60, ...how });
        const r = await ended(created.version);
        expect(r.status, `${greeting}: ${r.reason}`).toBe("succeeded");
        expect(r.machine_ids).toHaveLength(4);
        expect(await fleet()).toEqual({
          greetings: [greeting, greeting, greeting, greeting],
          releases: [String(r.version)],
        });
        expect(load.failures(), `${greeting} (${how.strategy})`).toEqual([]);
      }

      // v5 has a check that never passes: its first new machines never become healthy, and the app
      // goes back to v4 (image, config, 4 machines) by itself.
      const bad = await release({
        image,
        config: appConfig("v5", true),
        strategy: "rolling",
        wait_timeout: 8,
      });
      const failed = await ended(bad.version);
      expect(failed.status).toBe("failed");
      expect(failed.reason).toMatch(/not healthy|critical|reported 0 of its 1 checks/);
      expect(failed.rolled_back_to).toBe(4);
      expect(await fleet()).toEqual({ greetings: ["v4", "v4", "v4", "v4"], releases: ["4"] });
      expect(load.failures()).toEqual([]);
      const answered = JSON.parse((await viaProxy(p, app)).body) as { hello: string };
      expect(answered.hello).toBe("v4");
    } finally {
      await load.stop();
    }
    expect(load.answers.length).toBeGreaterThan(100);

    // The client's rollback: v2's image and config again, as a new release.
    const rb = await runHangar(["releases", "rollback", "2", "-a", app, "--strategy", "immediate"], {
      env: { HANGAR_HOME: p.home },
      timeoutMs: 120_000,
    });
    expect(rb.code, rb.stderr + rb.stdout).toBe(0);
    expect(rb.stdout).toMatch(/v6 \(v2's image and config\) is live on 4 machines/);
    expect((await fleet()).greetings).toEqual(["v2", "v2", "v2", "v2"]);

    const list = await runHangar(["releases", "-a", app], { env: { HANGAR_HOME: p.home } });
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/v6\s+succeeded.*immediate.*redeploys v2/);
    expect(list.stdout).toMatch(/v5\s+failed.*rolling.*rolled back to v4/);
    expect(list.stdout).toMatch(/v3\s+succeeded.*canary/);
    const all = await p.api.ok<ReleaseView[]>("GET", `/apps/${app}/releases`);
    expect(all.find((r) => r.version === 6)).toMatchObject({ rollback_of: 2, status: "succeeded" });
    expect(all.every((r) => r.deployed_by.startsWith("operator token"))).toBe(true);
  }, 600_000);

  it("runs the release_command once per release with the app's secrets before any machine changes, and a failing one changes nothing", async () => {
    const name = "migrates";
    await p.api.ok("POST", "/apps", { app_name: name, org_slug: "personal" });
    const databaseUrl = "postgres://app:s3cret@db.internal:5432/app";
    await p.api.ok("POST", `/apps/${name}/secrets`, { values: { DATABASE_URL: databaseUrl } });
    const digest = createHash("sha256").update(databaseUrl).digest("hex").slice(0, 12);
    const dir = mkdtempSync(join(tmpdir(), "hangar-release-command-"));
    // The "migration": needs the secret, says which database it ran against (by digest, never the value).
    const migrate = (exit: number) =>
      `node -e \\"const u = process.env.DATABASE_URL; if (!u) process.exit(2); console.log('migrated ' + require('crypto').createHash('sha256').update(u).digest('hex').slice(0, 12) + ' for ' + process.env.GREETING); process.exit(${exit})\\"`;
    const flyToml = (greeting: string, exit: number, vm = "") => `app = "${name}"
[env]
  GREETING = "${greeting}"
[http_service]
  internal_port = 8080
  auto_stop_machines = "off"
[[http_service.checks]]
  path = "/healthz"
  interval = "1s"
  grace_period = "1s"
[deploy]
  strategy = "immediate"
  release_command = "${migrate(exit)}"
${vm}`;
    const deploy = (greeting: string, exit: number, vm = "") => {
      writeFileSync(join(dir, "fly.toml"), flyToml(greeting, exit, vm));
      return runHangar(["deploy", "--image", image], {
        cwd: dir,
        env: { HANGAR_HOME: p.home },
        timeoutMs: 180_000,
      });
    };
    try {
      const first = await deploy("m1", 0);
      expect(first.code, first.stderr + first.stdout).toBe(0);
      expect(first.stdout).toContain("Running the release_command");
      expect(first.stdout).toContain(`migrated ${digest} for m1`);
      expect(first.stdout).toContain("release_command exited with code 0");
      expect(first.stdout + first.stderr).not.toContain(databaseUrl);
      const started = async () =>
        (await p.api.ok<MachineView[]>("GET", `/apps/${name}/machines`)).filter((m) => m.state === "started");

      // The same release asked for twice (a client retrying with its Idempotency-Key) runs it once.
      const [v1] = await p.api.ok<ReleaseView[]>("GET", `/apps/${name}/releases`);
      const again = {
        deploy: true,
        image,
        config: (v1 as ReleaseView & { config: unknown }).config,
        strategy: "immediate",
      };
      const headers = { "idempotency-key": "release-command-retry-1" };
      const a = await p.api.call<ReleaseView>("POST", `/apps/${name}/releases`, again, { headers });
      const b = await p.api.call<ReleaseView>("POST", `/apps/${name}/releases`, again, { headers });
      expect([a.status, b.status]).toEqual([201, 201]);
      expect(b.body.version).toBe(a.body.version);
      expect((await endedOf(name, a.body.version)).status).toBe("succeeded");
      const serving = await started();
      expect(serving, JSON.stringify(serving.map((m) => [m.id, m.config.metadata]))).toHaveLength(1);

      // Exit 1: the deploy fails saying so, and the machines serving are the same ones, untouched.
      const failing = await deploy("m3", 1, '[deploy.release_command_vm]\n  memory = "1gb"\n');
      expect(failing.code).not.toBe(0);
      expect(failing.stderr).toMatch(/release_command exited with code 1/);
      expect(failing.stdout).toContain(`migrated ${digest} for m3`);
      const still = await started();
      expect(still.map((m) => m.id)).toEqual(serving.map((m) => m.id));
      expect(still.every((m) => m.config.env?.GREETING === "m1")).toBe(true);

      // One run per release: v1, v2 (asked twice), v3; each release_command machine is gone once its release ended.
      const ever = await p.api.ok<MachineView[]>("GET", `/apps/${name}/machines?include_deleted=true`);
      const runs = ever
        .map((m) => m.config.metadata?.hangar_release_command)
        .filter((v): v is string => v !== undefined)
        .sort();
      expect(runs).toEqual(["1", "2", "3"]);
      // Their size, as flyctl chooses it: shared-cpu-2x with no machine yet (v1), then the default
      // group's machine with the most memory (v2: the one v1 made, the default guest), then
      // [deploy] release_command_vm (v3: shared-cpu-1x's preset with its memory).
      const guestOf = (version: string) =>
        ever.find((m) => m.config.metadata?.hangar_release_command === version)?.config.guest;
      expect(guestOf("1")).toMatchObject({ cpu_kind: "shared", cpus: 2, memory_mb: 512 });
      expect(guestOf("2")).toMatchObject({ cpu_kind: "shared", cpus: 1, memory_mb: 256 });
      expect(guestOf("3")).toMatchObject({ cpu_kind: "shared", cpus: 1, memory_mb: 1024 });
      const v1Run = ever.find((m) => m.config.metadata?.hangar_release_command === "1");
      expect(v1Run?.config.env).toMatchObject({
        RELEASE_COMMAND: "1",
        FLY_PROCESS_GROUP: "fly_app_release_command",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 400_000);

  it("a failing first release leaves machines no release made; a newer release waits for an older one's release_command, and takes over without counting the older one's machines", async () => {
    const name = "supersede";
    await p.api.ok("POST", "/apps", { app_name: name, org_slug: "personal" });
    const config = (greeting: string, extra: Record<string, unknown> = {}) => ({
      ...appConfig(greeting),
      ...extra,
      app: name,
    });
    // A machine that no release made (as flyctl's deploys leave them: a process group, no release):
    // a failing first release removes its own machines only.
    const adopted = await p.api.ok<MachineView>("POST", `/apps/${name}/machines`, {
      config: { image, env: { GREETING: "adopted" }, metadata: { fly_process_group: "app" } },
    });
    await p.api.ok("GET", `/apps/${name}/machines/${adopted.id}/wait?state=started`);
    const failing = await p.api.ok<ReleaseView>("POST", `/apps/${name}/releases`, {
      deploy: true,
      image,
      config: config("broken", appConfig("broken", true)),
      strategy: "immediate",
      wait_timeout: 5,
    });
    const f = await endedOf(name, failing.version);
    expect(f).toMatchObject({ status: "failed", rolled_back_to: null });
    const after = await live(name);
    expect(after.map((m) => m.id)).toEqual([adopted.id]);

    const good = await p.api.ok<ReleaseView>("POST", `/apps/${name}/releases`, {
      deploy: true,
      image,
      config: config("v1"),
      strategy: "immediate",
    });
    expect((await endedOf(name, good.version)).status).toBe("succeeded");
    const serving = (await live(name)).length;

    // v3's release_command takes 3 s; v4 comes while it runs.
    const slow = await p.api.ok<ReleaseView>("POST", `/apps/${name}/releases`, {
      deploy: true,
      image,
      config: config("v3", {
        deploy: { release_command: `node -e "setTimeout(() => console.log('slow done'), 3000)"` },
      }),
      strategy: "bluegreen",
    });
    const until = Date.now() + 30_000;
    while (
      !(
        await p.api.ok<ReleaseView & { release_command: unknown }>(
          "GET",
          `/apps/${name}/releases/${slow.version}`,
        )
      ).release_command
    ) {
      if (Date.now() > until) throw new Error("v3's release_command never started");
      await sleep(100);
    }
    const next = await p.api.ok<ReleaseView>("POST", `/apps/${name}/releases`, {
      deploy: true,
      image,
      config: config("v4"),
      strategy: "bluegreen",
    });
    const superseded = (await endedOf(name, slow.version)) as ReleaseView & {
      release_command: { exit_code: number | null; error: string | null };
    };
    expect(superseded.status).toBe("failed");
    expect(superseded.reason).toBe(`superseded by v${next.version}`);
    // It ran to its end: not cut off by the newer release.
    expect(superseded.release_command).toMatchObject({ exit_code: 0, error: null });
    expect((await endedOf(name, next.version)).status).toBe("succeeded");
    expect((await live(name)).map((m) => m.config.env?.GREETING)).toEqual(Array(serving).fill("v4"));

    // v5's machines never pass their check; v6 comes while they exist and counts only the serving ones.
    const stuck = await p.api.ok<ReleaseView>("POST", `/apps/${name}/releases`, {
      deploy: true,
      image,
      config: config("v5", appConfig("v5", true)),
      strategy: "bluegreen",
      wait_timeout: 120,
    });
    const until5 = Date.now() + 30_000;
    while ((await live(name)).length <= serving) {
      if (Date.now() > until5) throw new Error("v5 made no machine");
      await sleep(100);
    }
    const v6 = await p.api.ok<ReleaseView>("POST", `/apps/${name}/releases`, {
      deploy: true,
      image,
      config: config("v6"),
      strategy: "bluegreen",
    });
    expect(await endedOf(name, stuck.version)).toMatchObject({
      status: "failed",
      reason: `superseded by v${v6.version}`,
    });
    expect((await endedOf(name, v6.version)).status).toBe("succeeded");
    expect((await live(name)).map((m) => m.config.env?.GREETING)).toEqual(Array(serving).fill("v6"));
  }, 300_000);

  it("runs machine_checks against each new machine (FLY_TEST_MACHINE_IP) before it counts, and a failing one rolls the release back", async () => {
    const name = "machine-checked";
    await p.api.ok("POST", "/apps", { app_name: name, org_slug: "personal" });
    // The test: exits `exit` once it has the tested machine's address. (Reaching it there is the
    // private network's part, tested in tests/network; these dir: machines share the host's network
    // with a port each, where an image machine's app listens on its own address.)
    const probe = (exit: number) => [
      "node",
      "-e",
      `process.exit(process.env.FLY_TEST_MACHINE_IP && process.env.FLY_TEST_COMMAND === "1" ? ${exit} : 9)`,
    ];
    const config = (greeting: string, exit: number) => ({
      ...appConfig(greeting),
      app: name,
      http_service: {
        ...(appConfig(greeting).http_service as Record<string, unknown>),
        machine_checks: [{ command: probe(exit) }],
      },
    });
    const v1 = await p.api.ok<ReleaseView>("POST", `/apps/${name}/releases`, {
      deploy: true,
      image,
      config: config("checked", 0),
      strategy: "immediate",
    });
    const done = await endedOf(name, v1.version);
    expect(done, JSON.stringify(done)).toMatchObject({ status: "succeeded" });
    // The test machine ran (and stays a little while after the release, for its output).
    const all = await p.api.ok<MachineView[]>("GET", `/apps/${name}/machines`);
    const served = all.filter((m) => m.config.metadata?.hangar_release === String(v1.version));
    const tests = all.filter((m) => m.config.metadata?.hangar_machine_check !== undefined);
    expect(served).toHaveLength(1);
    expect(tests.map((t) => t.config.metadata?.hangar_machine_check)).toEqual([served[0]?.id]);
    const testEnv = tests[0]?.config.env ?? {};
    const tested = await p.api.ok<{ private_ip: string }>("GET", `/apps/${name}/machines/${served[0]?.id}`);
    expect(testEnv).toMatchObject({
      FLY_TEST_COMMAND: "1",
      FLY_PROCESS_GROUP: "fly_app_test_machine_command",
      FLY_TEST_MACHINE_IP: tested.private_ip,
    });
    expect(tests[0]?.config.metadata?.fly_process_group).toBe("fly_app_test_machine_command");

    // A check that fails: the new machine never counts, and v1 comes back.
    const v2 = await p.api.ok<ReleaseView>("POST", `/apps/${name}/releases`, {
      deploy: true,
      image,
      config: config("unchecked", 4),
      strategy: "immediate",
    });
    const failed = await endedOf(name, v2.version);
    expect(failed).toMatchObject({ status: "failed", rolled_back_to: v1.version });
    expect(failed.reason).toMatch(/machine check 1 of 1 \(node -e .*\) on machine \S+ exited with code 4/);
    const after = (await live(name)).filter((m) => m.config.metadata?.hangar_release_command === undefined);
    expect(after.map((m) => m.config.env?.GREETING)).toEqual(["checked"]);
  }, 180_000);

  it("refuses what it cannot carry out with a clear 4xx, and a client cannot end a release the platform carries out", async () => {
    const bad = await p.api.call("POST", `/apps/${app}/releases`, {
      deploy: true,
      image,
      strategy: "sideways",
    });
    expect(bad.status).toBe(400);
    const mu = await p.api.call("POST", `/apps/${app}/releases`, {
      deploy: true,
      image,
      max_unavailable: 1.5,
    });
    expect(mu.status).toBe(400);
    expect(JSON.stringify(mu.body)).toMatch(/max_unavailable/);
    const cfg = await p.api.call("POST", `/apps/${app}/releases`, {
      deploy: true,
      image,
      config: { http_service: { internal_port: "x" } },
    });
    expect(cfg.status).toBe(400);
    const missing = await p.api.call("POST", `/apps/${app}/releases`, { deploy: true, rollback_of: 99 });
    expect(missing.status).toBe(404);
    // The platform runs a seed_command: a release its client carries out cannot ask for one.
    const seedless = await p.api.call("POST", `/apps/${app}/releases`, { image, seed: true });
    expect(seedless.status).toBe(400);
    expect(JSON.stringify(seedless.body)).toMatch(/seed.*deploy: true/);
    const list = await p.api.ok<ReleaseView[]>("GET", `/apps/${app}/releases`);
    const newest = list[0] as ReleaseView;
    const end = await p.api.call("PATCH", `/apps/${app}/releases/${newest.version}`, {
      status: "failed",
      reason: "x",
    });
    expect(end.status).toBe(412);
  });
});
