// The rest of the machine lifecycle through the API of a running platform: update with a full
// config, leases, cordon, signals, suspend and resume, checks recorded as events, auto_destroy, and
// the restart policy applied to a machine that died while its host agent was down.
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CgroupRef, MachineCgroup } from "../../services/host-agent/src/driver/cgroup.js";
import { helloConfig, startTestPlatform, type TestPlatform, viaProxy } from "./harness.js";

let p: TestPlatform;
const APP = "life";

interface Machine {
  id: string;
  state: string;
  instance_id: string;
  config: { env?: Record<string, string> };
  checks: Array<{ name: string; status: string }>;
  nonce?: string;
}

beforeAll(async () => {
  p = await startTestPlatform();
  await p.api.ok("POST", "/apps", { app_name: APP, org_slug: "personal" });
}, 120_000);

afterAll(async () => {
  await p?.close();
});

/** Creates a machine and waits until it is started and its app accepts connections. */
async function create(extra: Record<string, unknown> = {}): Promise<Machine> {
  const m = await p.api.ok<Machine>("POST", `/apps/${APP}/machines`, { config: helloConfig(extra) });
  await waitState(m.id, "started");
  await waitListening(m.id);
  return m;
}

/** "started" means the process runs (as on Fly); the app inside may take a moment to listen. */
async function waitListening(id: string): Promise<void> {
  const run = JSON.parse(readFileSync(join(p.hostStateDir, id, "run.json"), "utf8")) as {
    privateIp: string;
    port: number;
  };
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(run.port, run.privateIp, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`machine ${id} never listened on ${run.privateIp}:${run.port}`);
}

async function waitState(id: string, state: string, extra = ""): Promise<void> {
  const res = await p.api.call("GET", `/apps/${APP}/machines/${id}/wait?state=${state}&timeout=30${extra}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

/** The pid of a machine's app process, from the host agent's run record. */
function appPid(id: string): number {
  const run = JSON.parse(readFileSync(join(p.hostStateDir, id, "run.json"), "utf8")) as { pid: number };
  // run.json holds the wrapper (the group leader); the app is its only child.
  const children = readFileSync(`/proc/${run.pid}/task/${run.pid}/children`, "utf8").trim().split(/\s+/);
  return Number(children[0]);
}

describe("machine lifecycle", () => {
  it("replaces a running machine on update and serves the new config", async () => {
    const m = await create({ env: { GREETING: "v1" } });
    const updated = await p.api.ok<Machine>("POST", `/apps/${APP}/machines/${m.id}`, {
      config: helloConfig({ env: { GREETING: "v2" } }),
    });
    expect(updated.instance_id).not.toBe(m.instance_id);
    await waitState(m.id, "started", `&instance_id=${updated.instance_id}`);
    let greeting = "";
    for (let i = 0; i < 50 && greeting !== "v2"; i++) {
      greeting = (JSON.parse((await viaProxy(p, APP)).body) as { hello: string }).hello;
      if (greeting !== "v2") await sleep(100);
    }
    expect(greeting).toBe("v2");
    expect((await p.api.ok<Machine>("GET", `/apps/${APP}/machines/${m.id}`)).config.env?.GREETING).toBe("v2");
    await p.api.ok("DELETE", `/apps/${APP}/machines/${m.id}?force=true`);
  });

  it("guards a leased machine by its nonce", async () => {
    const m = await create();
    const lease = await p.api.ok<{ nonce: string; data?: { nonce: string } }>(
      "POST",
      `/apps/${APP}/machines/${m.id}/lease`,
      {
        ttl: 60,
        description: "e2e",
      },
    );
    const nonce = lease.nonce ?? lease.data?.nonce;
    expect(nonce).toBeTruthy();
    const held = await p.api.call<{ status: string }>("POST", `/apps/${APP}/machines/${m.id}/stop`, {});
    expect(held.status).toBe(409);
    expect(held.body.status).toBe("aborted");
    const again = await p.api.call("POST", `/apps/${APP}/machines/${m.id}/lease`, { ttl: 60 });
    expect(again.status).toBe(409);
    const stop = await p.api.call(
      "POST",
      `/apps/${APP}/machines/${m.id}/stop`,
      {},
      {
        headers: { "fly-machine-lease-nonce": nonce as string },
      },
    );
    expect(stop.status).toBe(200);
    await waitState(m.id, "stopped");
    const release = await p.api.call("DELETE", `/apps/${APP}/machines/${m.id}/lease`, undefined, {
      headers: { "fly-machine-lease-nonce": nonce as string },
    });
    expect(release.status).toBe(200);
    expect((await p.api.call("GET", `/apps/${APP}/machines/${m.id}/lease`)).status).toBe(404);
    await p.api.ok("DELETE", `/apps/${APP}/machines/${m.id}?force=true`);
  });

  it("takes a cordoned machine out of the proxy and back", async () => {
    const a = await create();
    const b = await create();
    await p.api.ok("POST", `/apps/${APP}/machines/${a.id}/cordon`);
    const seen = async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 20; i++)
        ids.add((JSON.parse((await viaProxy(p, APP)).body) as { machine_id: string }).machine_id);
      return ids;
    };
    await sleep(200);
    expect([...(await seen())]).toEqual([b.id]);
    await p.api.ok("POST", `/apps/${APP}/machines/${a.id}/uncordon`);
    let ids = new Set<string>();
    for (let i = 0; i < 10 && ids.size < 2; i++) ids = await seen();
    expect(ids).toEqual(new Set([a.id, b.id]));
    for (const m of [a, b]) await p.api.ok("DELETE", `/apps/${APP}/machines/${m.id}?force=true`);
  });

  it("delivers a signal to the machine's process", async () => {
    const m = await create();
    // examples/hello exits on SIGTERM; the exit was not asked for by a stop, so on-failure does not
    // restart a clean exit and the machine ends stopped.
    expect(
      (await p.api.call("POST", `/apps/${APP}/machines/${m.id}/signal`, { signal: "SIGTERM" })).status,
    ).toBe(200);
    await waitState(m.id, "stopped");
    const events = await p.api.ok<
      Array<{ type: string; request?: { exit_event?: { requested_stop: boolean } } }>
    >("GET", `/apps/${APP}/machines/${m.id}/events`);
    expect(events.find((e) => e.type === "exit")?.request?.exit_event?.requested_stop).toBe(false);
    await p.api.ok("DELETE", `/apps/${APP}/machines/${m.id}`);
  });

  it("suspends a machine (its process keeps its memory) and resumes the same process", async () => {
    const m = await create();
    const pid = appPid(m.id);
    expect((await p.api.call("POST", `/apps/${APP}/machines/${m.id}/suspend`)).status).toBe(200);
    await waitState(m.id, "suspended");
    // Frozen in its cgroup where the host has a freezer (as root here), else stopped by SIGSTOP.
    const run = JSON.parse(readFileSync(join(p.hostStateDir, m.id, "run.json"), "utf8")) as {
      cgroup?: CgroupRef | null;
    };
    if (run.cgroup) {
      const cgroup = new MachineCgroup(run.cgroup.version, run.cgroup.path);
      expect(cgroup.pids()).toContain(pid);
      expect(cgroup.isFrozen()).toBe(true);
    } else {
      expect(readFileSync(`/proc/${pid}/stat`, "utf8").split(" ")[2]).toBe("T");
    }
    expect((await p.api.call("POST", `/apps/${APP}/machines/${m.id}/start`)).status).toBe(200);
    await waitState(m.id, "started");
    expect(appPid(m.id)).toBe(pid);
    expect((await viaProxy(p, APP)).status).toBe(200);
    await p.api.ok("DELETE", `/apps/${APP}/machines/${m.id}?force=true`);
  });

  it("records check results as events", async () => {
    const m = await create({
      checks: { alive: { type: "http", port: 8080, path: "/healthz", interval: "1s", timeout: "1s" } },
    });
    let machine = await p.api.ok<Machine>("GET", `/apps/${APP}/machines/${m.id}`);
    // The first result may be critical, if the check ran before the app listened.
    for (let i = 0; i < 50 && machine.checks[0]?.status !== "passing"; i++) {
      await sleep(100);
      machine = await p.api.ok<Machine>("GET", `/apps/${APP}/machines/${m.id}`);
    }
    expect(machine.checks).toEqual([expect.objectContaining({ name: "alive", status: "passing" })]);
    await p.api.ok("DELETE", `/apps/${APP}/machines/${m.id}?force=true`);
  });

  it("destroys a machine with auto_destroy once its process has ended, by itself or stopped, and keeps one without", async () => {
    interface ExitEvent {
      type: string;
      request?: { exit_event?: { exit_code: number | null; requested_stop: boolean } };
    }
    // A destroyed machine is listed (with its latest events) when the list includes deleted ones,
    // and answered by GET with its events, as flyctl reads an auto_destroy machine's exit.
    const exitOf = async (id: string) =>
      (
        await p.api.ok<Array<{ id: string; state: string; events: ExitEvent[] }>>(
          "GET",
          `/apps/${APP}/machines?include_deleted=true`,
        )
      )
        .find((m) => m.id === id && m.state === "destroyed")
        ?.events.find((e) => e.type === "exit")?.request?.exit_event;
    // Ends by itself with code 3: destroyed, the exit recorded.
    const ends = await p.api.ok<Machine>("POST", `/apps/${APP}/machines`, {
      config: helloConfig({
        auto_destroy: true,
        restart: { policy: "no" },
        init: { cmd: ["node", "-e", "setTimeout(() => process.exit(3), 300)"] },
      }),
    });
    await waitState(ends.id, "destroyed");
    expect(await exitOf(ends.id)).toMatchObject({ exit_code: 3, requested_stop: false });
    const got = await p.api.ok<{ state: string; events: ExitEvent[] }>(
      "GET",
      `/apps/${APP}/machines/${ends.id}`,
    );
    expect(got.state).toBe("destroyed");
    expect(got.events.find((e) => e.type === "exit")?.request?.exit_event).toMatchObject({ exit_code: 3 });
    // Stopped through the API: destroyed too.
    const stopped = await create({ auto_destroy: true, restart: { policy: "no" } });
    await p.api.ok("POST", `/apps/${APP}/machines/${stopped.id}/stop`);
    await waitState(stopped.id, "destroyed");
    expect(await exitOf(stopped.id)).toMatchObject({ requested_stop: true });
    // Without auto_destroy, a machine that ends stays, stopped.
    const kept = await p.api.ok<Machine>("POST", `/apps/${APP}/machines`, {
      config: helloConfig({ restart: { policy: "no" }, init: { cmd: ["node", "-e", "process.exit(0)"] } }),
    });
    await waitState(kept.id, "stopped");
    await sleep(500);
    expect((await p.api.ok<Machine>("GET", `/apps/${APP}/machines/${kept.id}`)).state).toBe("stopped");
    await p.api.ok("DELETE", `/apps/${APP}/machines/${kept.id}`);
  });

  it("applies the restart policy to machines that died while the host agent was down", async () => {
    const always = await create({ restart: { policy: "always" } });
    const never = await create({ restart: { policy: "no" } });
    const before = appPid(always.id);
    await p.services["host-agent"].kill("SIGKILL");
    process.kill(appPid(always.id), "SIGKILL");
    process.kill(appPid(never.id), "SIGKILL");
    await sleep(300);
    await p.services["host-agent"].restart();
    await waitState(never.id, "stopped");
    let state = "";
    for (let i = 0; i < 100 && state !== "started"; i++) {
      state = (await p.api.ok<Machine>("GET", `/apps/${APP}/machines/${always.id}`)).state;
      if (state !== "started") await sleep(100);
    }
    expect(state).toBe("started");
    expect(appPid(always.id)).not.toBe(before);
    expect((await viaProxy(p, APP)).status).toBe(200);
  });
});
