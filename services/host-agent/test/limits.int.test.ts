import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CgroupLimits, type LimitsRef, MachineLimits } from "../src/driver/cgroup-limits.js";
import { type GuestSize, InvalidMachineSpecError, ProcessDriver } from "../src/driver/mod.js";
import type { RunRecord } from "../src/driver/state.js";
import {
  httpApp,
  httpReady,
  nodeScript,
  recordExits,
  removeStateDir,
  runSpec,
  tempStateDir,
} from "./harness.js";
import { waitFor } from "./wait.js";

// Creating cgroups needs root and the cpu, memory and pids controllers (v1 or v2).
const host = process.getuid?.() === 0 ? CgroupLimits.detect() : { reason: "not root" };

let stateDir: string;
const drivers: ProcessDriver[] = [];

function newDriver(): ProcessDriver {
  const driver = new ProcessDriver({ stateDir, pollIntervalMs: 50 });
  drivers.push(driver);
  return driver;
}

beforeEach(async () => {
  stateDir = await tempStateDir();
});

afterEach(async () => {
  for (const driver of drivers.splice(0)) await driver.close();
  await removeStateDir(stateDir);
});

const small: GuestSize = { cpus: 1, cpuKind: "shared", memoryMb: 256 };

/** Grows a list of 1 MiB buffers, each written to (so its pages are charged), to 1 GiB and beyond. */
const hog = (delayMs = 0) =>
  nodeScript(
    `setTimeout(() => { const held = []; for (;;) held.push(Buffer.alloc(1 << 20, 1)); }, ${delayMs});`,
  );

function limitsOf(machineId: string): MachineLimits {
  const run = JSON.parse(readFileSync(join(stateDir, machineId, "run.json"), "utf8")) as RunRecord;
  return MachineLimits.fromRef(run.limits as LimitsRef);
}

function cgroupPath(limits: MachineLimits, controller: "cpu" | "memory" | "pids"): string {
  const cgroup = limits.cgroups.find((c) => c.controllers.includes(controller));
  if (!cgroup) throw new Error(`no ${controller} cgroup`);
  return cgroup.path;
}

/** Reads a control file of a v1 or v2 cgroup, for the value either version names. */
function control(path: string, v1: string, v2: string): string {
  return readFileSync(join(path, existsSync(join(path, v1)) ? v1 : v2), "utf8").trim();
}

/** The CPU quota and period, as v2's cpu.max says them (v1 keeps them in two files). */
function cpuMax(path: string): string {
  if (!existsSync(join(path, "cpu.cfs_quota_us"))) return readFileSync(join(path, "cpu.max"), "utf8").trim();
  const read = (file: string) => readFileSync(join(path, file), "utf8").trim();
  return `${read("cpu.cfs_quota_us")} ${read("cpu.cfs_period_us")}`;
}

describe("a guest the driver cannot limit", () => {
  it("is refused before anything runs", async () => {
    const driver = newDriver();
    for (const guest of [
      { cpus: 0, cpuKind: "shared", memoryMb: 256 },
      { cpus: 1, cpuKind: "shared", memoryMb: 0.5 },
      { cpus: 1, cpuKind: "dedicated", memoryMb: 256 },
    ]) {
      await expect(
        driver.start(runSpec("bad", httpApp, { guest: guest as GuestSize })),
      ).rejects.toBeInstanceOf(InvalidMachineSpecError);
    }
    expect(existsSync(join(stateDir, "bad"))).toBe(false);
  });
});

describe.skipIf(!("limits" in host))("machine limits from the guest", () => {
  it("puts the app in cgroups holding its guest size, and removes them with the machine", async () => {
    const driver = newDriver();
    await driver.start(
      runSpec("sized", httpApp, { guest: { cpus: 2, cpuKind: "performance", memoryMb: 512 } }),
    );
    const limits = limitsOf("sized");
    const memory = cgroupPath(limits, "memory");
    expect(control(memory, "memory.limit_in_bytes", "memory.max")).toBe(String(512 * 1024 * 1024));
    expect(control(cgroupPath(limits, "pids"), "pids.max", "pids.max")).toBe("2048");
    const cpu = cgroupPath(limits, "cpu");
    expect(cpuMax(cpu)).toBe("200000 100000");
    // The app itself is in every one of them, from its first instruction.
    const procs = limits.procsFiles.map((f) => readFileSync(f, "utf8"));
    const [first] = procs;
    for (const p of procs) expect(p).toBe(first);
    expect(first?.trim().split("\n").length).toBeGreaterThanOrEqual(2);

    // What an exec'd command joins to be one of the machine's: the freezer's cgroup, then the limits'.
    const freezer = driver.cgroupOf("sized");
    expect(driver.cgroupProcsFiles("sized")).toEqual([
      ...(freezer ? [join(freezer.path, "cgroup.procs")] : []),
      ...limits.procsFiles,
    ]);

    await driver.destroy("sized");
    expect(limits.exists()).toBe(false);
  });

  it("records a machine the OOM killer ended as oomKilled; another machine runs on", async () => {
    const driver = newDriver();
    const { next } = recordExits(driver);
    const neighbour = await driver.start(runSpec("neighbour", httpApp, { guest: small }));
    await httpReady("127.0.0.1", neighbour.port);
    await driver.start(runSpec("hog", hog(), { guest: small }));
    const exit = await next("hog");
    // 137 = 128 + SIGKILL, with the signal's name where no runtime's init stands between.
    expect(exit).toMatchObject({ exitCode: 137, requested: false, oomKilled: true });
    expect(limitsOf("hog").oomKills()).toBeGreaterThan(0);
    // Only the hog's cgroup ran out: its neighbour still answers.
    expect(await httpReady("127.0.0.1", neighbour.port)).toMatchObject({ port: String(neighbour.port) });
    expect(driver.running().map((m) => m.machineId)).toEqual(["neighbour"]);
  });

  it("counts OOM kills per run: a later run that is stopped is not oomKilled", async () => {
    const driver = newDriver();
    const { next, exits } = recordExits(driver);
    await driver.start(runSpec("m1", hog(), { guest: small }));
    expect((await next("m1")).oomKilled).toBe(true);
    exits.splice(0);
    await driver.start(runSpec("m1", httpApp, { guest: small }));
    const stopped = await driver.stop("m1", { signal: "SIGKILL" });
    expect(stopped).toMatchObject({ exitCode: 137, requested: true });
    expect(stopped.oomKilled).toBeUndefined();
  });

  it("reports an OOM kill that happened while no agent watched, when the next one adopts the run", async () => {
    const first = newDriver();
    await first.start(runSpec("late", hog(500), { guest: small }));
    await first.close();
    await waitFor("the wrapper's exit record", () =>
      existsSync(join(stateDir, "late", "exit")) ? true : undefined,
    );
    const adopted = await newDriver().adopt();
    expect(adopted.exited).toMatchObject([
      { machineId: "late", exit: { exitCode: 137, requested: false, oomKilled: true } },
    ]);
  });

  it("caps a fork bomb at pids.max, with a CPU quota, while another machine answers", async () => {
    const driver = newDriver();
    const neighbour = await driver.start(runSpec("web", httpApp, { guest: small }));
    await httpReady("127.0.0.1", neighbour.port);
    // Every process forks for ever: only the pids cap stops the growth.
    await driver.start(runSpec("bomb", ["/usr/bin/perl", "-e", "fork while 1"], { guest: small }));
    const limits = limitsOf("bomb");
    // A fork refused at pids.max (pids.events) is the cap at work. What was last seen is in the
    // message if it never comes.
    let last: ReturnType<typeof limits.pidsUsage> = null;
    const capped = await waitFor(
      "the bomb to reach pids.max",
      () => {
        last = limits.pidsUsage();
        return last && last.refusedForks > 0 ? last : undefined;
      },
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last pids usage: ${JSON.stringify(last)}`);
    });
    expect(capped.current).toBeLessThanOrEqual(1024);
    expect(capped.max).toBe(1024);
    // Its CPU is capped at one core (whether the quota runs out depends on what else the host runs).
    const cpu = cgroupPath(limits, "cpu");
    expect(cpuMax(cpu)).toBe("100000 100000");
    expect(await httpReady("127.0.0.1", neighbour.port)).toMatchObject({ port: String(neighbour.port) });
    expect((limits.pidsUsage()?.current ?? 0) <= 1024).toBe(true);

    await driver.stop("bomb", { signal: "SIGKILL", timeoutMs: 1_000 });
    await driver.destroy("bomb");
    expect(limits.exists()).toBe(false);
  }, 120_000);
});
