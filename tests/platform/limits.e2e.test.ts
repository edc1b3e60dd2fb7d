// A machine's guest size holds on a running platform: a machine of memory_mb 256 that allocates 1 GiB
// is OOM-killed, its exit says oom_killed in the events and in GET machine, its restart policy
// applies, and a machine beside it on the same host answers throughout.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CgroupLimits } from "../../services/host-agent/src/driver/cgroup-limits.js";
import { helloConfig, startTestPlatform, type TestPlatform, viaProxy } from "./harness.js";

// Limits need root and the cpu, memory and pids controllers; elsewhere machines run without them.
const limited = process.getuid?.() === 0 && "limits" in CgroupLimits.detect();

let p: TestPlatform;
const APP = "limits";
const NEIGHBOUR_APP = "limits-neighbour";

interface ExitEvent {
  type: string;
  status: string;
  request?: {
    exit_event?: { exit_code: number; signal?: number; oom_killed: boolean; requested_stop: boolean };
    attempt?: number;
  };
}

beforeAll(async () => {
  if (!limited) return;
  p = await startTestPlatform();
  for (const app_name of [APP, NEIGHBOUR_APP])
    await p.api.ok("POST", "/apps", { app_name, org_slug: "personal" });
}, 120_000);

afterAll(async () => {
  await p?.close();
});

/** Grows a list of 1 MiB buffers, each written to so that its pages count, towards 1 GiB and beyond. */
const HOG =
  "const held = []; for (let i = 0; i < 1024; i++) held.push(Buffer.alloc(1 << 20, 1)); setInterval(() => {}, 1000);";

describe.skipIf(!limited)("guest limits on the platform", () => {
  it("OOM-kills a 256 MB machine that allocates 1 GiB, says oom_killed, restarts it by its policy, and leaves its neighbour alone", async () => {
    const neighbour = await p.api.ok<{ id: string }>("POST", `/apps/${NEIGHBOUR_APP}/machines`, {
      config: helloConfig(),
    });
    await p.api.ok("GET", `/apps/${NEIGHBOUR_APP}/machines/${neighbour.id}/wait?state=started&timeout=30`);
    for (let i = 0; i < 100 && (await viaProxy(p, NEIGHBOUR_APP)).status !== 200; i++) await sleep(50);

    const hog = await p.api.ok<{ id: string }>("POST", `/apps/${APP}/machines`, {
      config: helloConfig({
        init: { exec: ["node", "-e", HOG] },
        guest: { cpu_kind: "shared", cpus: 1, memory_mb: 256 },
        restart: { policy: "on-failure", max_retries: 1 },
      }),
    });
    // Killed, restarted once by on-failure, killed again, and then left stopped (max_retries 1).
    let events: ExitEvent[] = [];
    for (let i = 0; i < 600; i++) {
      events = await p.api.ok<ExitEvent[]>("GET", `/apps/${APP}/machines/${hog.id}/events`);
      if (events.filter((e) => e.type === "exit").length >= 2) break;
      await sleep(100);
    }
    const exits = events.filter((e) => e.type === "exit");
    expect(exits).toHaveLength(2);
    for (const e of exits) {
      // 137 = 128 + SIGKILL: a sandbox's init reports its child's death by signal as that exit code.
      expect(e.request?.exit_event).toMatchObject({
        exit_code: 137,
        oom_killed: true,
        requested_stop: false,
      });
    }
    expect(events.filter((e) => e.type === "restart" && e.status === "starting")).toHaveLength(1);
    await p.api.ok("GET", `/apps/${APP}/machines/${hog.id}/wait?state=stopped&timeout=30`);

    const machine = await p.api.ok<{ state: string; events: ExitEvent[] }>(
      "GET",
      `/apps/${APP}/machines/${hog.id}`,
    );
    expect(machine.state).toBe("stopped");
    expect(machine.events.find((e) => e.type === "exit")?.request?.exit_event?.oom_killed).toBe(true);

    // The neighbour, on the same host, never noticed.
    const view = await p.api.ok<{ state: string }>("GET", `/apps/${NEIGHBOUR_APP}/machines/${neighbour.id}`);
    expect(view.state).toBe("started");
    expect((await viaProxy(p, NEIGHBOUR_APP)).status).toBe(200);
    const neighbourEvents = await p.api.ok<ExitEvent[]>(
      "GET",
      `/apps/${NEIGHBOUR_APP}/machines/${neighbour.id}/events`,
    );
    expect(neighbourEvents.filter((e) => e.type === "exit")).toEqual([]);
  });

  it("refuses a machine larger than the host's memory with insufficient_capacity", async () => {
    const res = await p.api.call("POST", `/apps/${APP}/machines`, {
      config: helloConfig({ guest: { cpu_kind: "shared", cpus: 1, memory_mb: 64 * 256 + 1 } }),
    });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ status: "insufficient_capacity" });
    expect(JSON.stringify(res.body)).toMatch(/insufficient capacity/);
  });
});
