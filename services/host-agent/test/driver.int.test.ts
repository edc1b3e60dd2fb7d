import { existsSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { BUNDLE_ROOT } from "@hangar/oci";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  InvalidMachineSpecError,
  InvalidSignalError,
  MachineAlreadyRunningError,
  MachineNotRunningError,
  ProcessDriver,
  runChecks,
} from "../src/driver/mod.js";
import { listPids, readCmdline, readProcStat } from "../src/driver/proc.js";
import { containerIdOf } from "../src/driver/sandbox.js";
import {
  groupGone,
  groupMembers,
  httpApp,
  httpReady,
  recordExits,
  removeStateDir,
  runSpec,
  sh,
  tempStateDir,
} from "./harness.js";
import { waitFor } from "./wait.js";

let stateDir: string;
let driver: ProcessDriver;

beforeEach(async () => {
  stateDir = await tempStateDir();
  driver = new ProcessDriver({ stateDir, pollIntervalMs: 50 });
});

afterEach(async () => {
  await driver.close();
  await removeStateDir(stateDir);
});

describe("ProcessDriver: start", () => {
  it("runs the app with PORT, FLY_PRIVATE_IP and its env, serving on privateIp:port, and tails its logs", async () => {
    const lines: string[] = [];
    driver.onLog((machineId, { stream, line }) => lines.push(`${machineId} ${stream} ${line}`));
    const m = await driver.start(runSpec("m1", httpApp, { env: { HELLO: "world" } }));

    expect(m.privateIp).toMatch(/^127\.77\.\d+\.\d+$/);
    expect(m.startTime).toBe(readProcStat(m.pid)?.startTime);
    // The machine leads its own process group, so a signal to the group reaches all of it.
    expect(readProcStat(m.pid)?.pgrp).toBe(m.pid);
    const body = await httpReady(m.privateIp, m.port);
    expect(body).toEqual({ port: String(m.port), ip: m.privateIp, hello: "world" });
    await waitFor("both log streams", () =>
      lines.includes(`m1 stdout listening on ${m.port}`) && lines.includes("m1 stderr stderr works")
        ? true
        : undefined,
    );

    const run = JSON.parse(readFileSync(join(stateDir, "m1", "run.json"), "utf8"));
    expect(run).toMatchObject({ pid: m.pid, startTime: m.startTime, privateIp: m.privateIp, port: m.port });
    expect(run.spec.env).toEqual({ HELLO: "world" });
    expect(driver.running()).toEqual([m]);
  });

  it("puts secrets in the machine's environment, over its env, and never in run.json", async () => {
    const m = await driver.start(
      runSpec("ms", ["sleep", "30"], {
        env: { SHARED: "from-config" },
        secretEnv: { TOKEN: "s3cret-value", SHARED: "from-secret" },
      }),
    );
    // The app's own environment, as the kernel holds it (the machine's processes may hold it).
    const environ = await waitFor("the app's environment", () =>
      groupMembers(m.pid)
        .map((pid) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0"))
        .find((vars) => vars.some((v) => v.startsWith("TOKEN="))),
    );
    expect(environ).toContain("TOKEN=s3cret-value");
    expect(environ).toContain("SHARED=from-secret");
    const run = readFileSync(join(stateDir, "ms", "run.json"), "utf8");
    expect(run).not.toContain("s3cret-value");
    expect(run).not.toContain("from-secret");
    expect(JSON.parse(run).spec.env).toEqual({ SHARED: "from-config" });
    // Nor the wrapper's, nor the driver's own.
    expect(readFileSync(`/proc/${m.pid}/environ`, "utf8")).not.toContain("s3cret-value");
    expect(readFileSync(`/proc/${process.pid}/environ`, "utf8")).not.toContain("s3cret-value");
  });

  it("removes the bundle (the env, secrets included) when a start fails after writing it", async () => {
    // run.json a folder with a file in it: recording the run, right after the bundle is written, fails.
    await mkdir(join(stateDir, "mb", "run.json", "in-the-way"), { recursive: true });
    const bundle = join(BUNDLE_ROOT, containerIdOf(stateDir, "mb"));
    await expect(
      driver.start(runSpec("mb", ["sleep", "30"], { secretEnv: { TOKEN: "s3cret-value" } })),
    ).rejects.toThrow(/run\.json/);
    expect(existsSync(bundle)).toBe(false);
  });

  it("gives each machine its own private ip and port, and keeps the ip across runs", async () => {
    const [a, b] = await Promise.all([
      driver.start(runSpec("ma", ["sleep", "30"])),
      driver.start(runSpec("mb", ["sleep", "30"])),
    ]);
    expect(a?.privateIp).not.toBe(b?.privateIp);
    expect(a?.port).not.toBe(b?.port);
    await driver.stop("ma", { timeoutMs: 5_000 });
    const again = await driver.start(runSpec("ma", ["sleep", "30"]));
    expect(again.privateIp).toBe(a?.privateIp);
    expect(again.pid).not.toBe(a?.pid);
  });

  it("never starts a second copy, not even from another driver on the same state", async () => {
    await driver.start(runSpec("m1", ["sleep", "30"]));
    await expect(driver.start(runSpec("m1", ["sleep", "30"]))).rejects.toThrow(MachineAlreadyRunningError);
    const other = new ProcessDriver({ stateDir });
    try {
      await expect(other.start(runSpec("m1", ["sleep", "30"]))).rejects.toThrow(MachineAlreadyRunningError);
    } finally {
      await other.close();
    }
  });
});

describe("ProcessDriver: exits", () => {
  it("leaves no moment between a run's end and its exit report when the machine is neither running nor exiting", async () => {
    // The agent takes a machine that is neither for an exit nobody saw (recorded with no code):
    // while the driver reads a real exit, `exiting` must say so, until the exit is reported.
    let reported = false;
    driver.onExit(() => {
      reported = true;
    });
    const m = await driver.start(runSpec("m1", ["sleep", "30"]));
    const gaps: number[] = [];
    let looks = 0;
    driver.signal("m1", "SIGHUP");
    while (!reported && looks < 100_000) {
      looks++;
      const running = driver.running().some((r) => r.machineId === "m1");
      if (!running && !driver.exiting("m1") && !reported) gaps.push(looks);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(reported).toBe(true);
    expect(gaps).toEqual([]);
    expect(driver.exiting("m1")).toBe(false);
    await groupGone(m.pid);
  });

  it("stop with SIGTERM: the app exits and the exit is recorded once, as requested", async () => {
    const { exits } = recordExits(driver);
    const m = await driver.start(runSpec("m1", httpApp));
    await httpReady(m.privateIp, m.port);
    const exit = await driver.stop("m1", { signal: "SIGTERM", timeoutMs: 10_000 });
    expect(exit).toEqual({ exitCode: 0, requested: true });
    expect(exits).toEqual([{ machineId: "m1", exit }]);
    expect(driver.running()).toEqual([]);
    await groupGone(m.pid);
    // Later polls must not report it again.
    await sleep(300);
    expect(exits).toHaveLength(1);
    expect(() => driver.signal("m1", "SIGTERM")).toThrow(MachineNotRunningError);
  });

  it("stop of an app that ignores SIGTERM: SIGKILL to the whole group after the timeout", async () => {
    // The shell and its sleep children all ignore SIGTERM.
    const m = await driver.start(runSpec("m1", sh("trap '' TERM; echo ready; while :; do sleep 1; done")));
    // The wrapper, crun, the machine's init, the shell and its sleep: the trap is set.
    await waitFor("the sleep child", () => (groupMembers(m.pid).length >= 5 ? true : undefined));
    const exit = await driver.stop("m1", { signal: "SIGTERM", timeoutMs: 300 });
    expect(exit).toEqual({ exitCode: 137, signal: "SIGKILL", requested: true });
    await groupGone(m.pid);
    expect(JSON.parse(readFileSync(join(stateDir, "m1", "stop.json"), "utf8"))).toMatchObject({
      requested: true,
      killed: true,
    });
  });

  it("reports exit codes 0, 3 and 130, and deaths by a signal it sent as 128+n with the signal", async () => {
    const { next } = recordExits(driver);
    await driver.start(runSpec("zero", sh("exit 0")));
    await driver.start(runSpec("three", sh("exit 3")));
    await driver.start(runSpec("onethirty", sh("exit 130")));
    await driver.start(runSpec("suicide", sh("kill -USR2 $$; sleep 5")));
    await driver.start(runSpec("signalled", ["sleep", "30"]));
    driver.signal("signalled", "SIGTERM");

    expect(await next("zero")).toEqual({ exitCode: 0, requested: false });
    expect(await next("three")).toEqual({ exitCode: 3, requested: false });
    // A shell wrapper could not tell this from a death by SIGINT.
    expect(await next("onethirty")).toEqual({ exitCode: 130, requested: false });
    // crun and the machine's init report a death by signal n as 128+n, as a shell does: only a
    // signal the driver sent is named.
    expect(await next("suicide")).toEqual({ exitCode: 140, requested: false });
    expect(await next("signalled")).toEqual({ exitCode: 143, signal: "SIGTERM", requested: false });
  });

  it("leaves no straggler behind when the main process exits", async () => {
    const { next } = recordExits(driver);
    const lines: string[] = [];
    driver.onLog((_id, { line }) => lines.push(line));
    const m = await driver.start(runSpec("m1", sh("sleep 3031 & echo $!; exit 4")));
    expect(await next("m1")).toEqual({ exitCode: 4, requested: false });
    // The straggler lived in the machine's pid namespace, which died with its init.
    expect(lines[0]).toMatch(/^\d+$/);
    await waitFor("the straggler to be gone", () =>
      listPids().some((pid) => readCmdline(pid)?.join(" ") === "sleep 3031") ? undefined : true,
    );
    await groupGone(m.pid);
  });

  it("exec runs a command inside the machine: its namespaces, capabilities, seccomp and cgroups", async () => {
    await driver.start(runSpec("m1", sh("echo ready; while :; do sleep 1; done")));
    const probe = await driver.exec("m1", {
      command: [
        "sh",
        "-c",
        "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; cat /proc/1/comm; cat /proc/self/cgroup",
      ],
      timeoutMs: 10_000,
    });
    expect(probe.exitCode, probe.stderr).toBe(0);
    expect(probe.stdout).toMatch(/CapEff:\s+00000000800405fb/);
    expect(probe.stdout).toMatch(/Seccomp:\s+2/);
    expect(probe.stdout).toMatch(/NoNewPrivs:\s+1/);
    // pid 1 is the machine's init, not the host's.
    expect(probe.stdout).toMatch(/^hangar-init$/m);
    // The exec'd command is in the machine's cgroups (limits included), as the app is.
    const procs = driver.cgroupProcsFiles("m1")[0] ?? "";
    expect(procs).toContain("/hangar/");
    expect(probe.stdout).toContain(
      `:${procs.slice(procs.indexOf("/hangar/")).replace(/\/cgroup\.procs$/, "")}\n`,
    );

    expect(
      await driver.exec("m1", { command: ["sh", "-c", "echo out; echo err >&2; exit 3"], timeoutMs: 10_000 }),
    ).toEqual({
      stdout: "out\n",
      stderr: "err\n",
      exitCode: 3,
      truncated: false,
    });
    const slow = await driver.exec("m1", { command: ["sleep", "30"], timeoutMs: 300 });
    expect(slow.exitSignal).toBe(9);
    await expect(driver.exec("m1", { command: [], timeoutMs: 1000 })).rejects.toThrow(
      InvalidMachineSpecError,
    );
    await driver.stop("m1", { timeoutMs: 1000 });
    await expect(driver.exec("m1", { command: ["true"], timeoutMs: 1000 })).rejects.toThrow(
      MachineNotRunningError,
    );
  });

  it("rejects signal names that are not signals", async () => {
    await driver.start(runSpec("m1", ["sleep", "30"]));
    for (const bad of ["SIGFOO", "TERM", "sigterm", "15", ""]) {
      expect(() => driver.signal("m1", bad)).toThrow(InvalidSignalError);
    }
    await expect(driver.stop("m1", { signal: "KILL" })).rejects.toMatchObject({ code: "INVALID_SIGNAL" });
    expect(() => driver.signal("nope", "SIGTERM")).toThrow(MachineNotRunningError);
  });

  it("reports an unknown command as a failed exit with the reason in stderr", async () => {
    const { next } = recordExits(driver);
    const lines: string[] = [];
    driver.onLog((_id, { stream, line }) => lines.push(`${stream} ${line}`));
    await driver.start(runSpec("m1", ["/no/such/binary"]));
    // The machine's init (catatonit) cannot exec it and says so.
    expect(await next("m1")).toEqual({ exitCode: 1, requested: false });
    expect(lines.some((l) => l.startsWith("stderr ") && /failed to exec.*No such file/.test(l))).toBe(true);
  });

  it("destroy kills the machine and deletes its state", async () => {
    const { next } = recordExits(driver);
    const m = await driver.start(runSpec("m1", ["sleep", "30"]));
    await driver.destroy("m1");
    expect(await next("m1")).toEqual({ exitCode: 137, signal: "SIGKILL", requested: true });
    expect(existsSync(join(stateDir, "m1"))).toBe(false);
    await groupGone(m.pid);
    await driver.destroy("m1");
  });
});

// The cgroup freezer is tested in suspend.int.test.ts; this is the fallback for hosts without one.
describe("ProcessDriver: suspend and resume with signals", () => {
  let signals: ProcessDriver;

  beforeEach(() => {
    signals = new ProcessDriver({ stateDir, pollIntervalMs: 50, suspend: "signals" });
  });

  afterEach(async () => {
    await signals.close();
  });

  it("a suspended machine does not answer; once resumed it answers the waiting request", async () => {
    expect(signals.suspendMode()).toEqual({ mode: "signals", reason: "the driver was told to use signals" });
    const m = await signals.start(runSpec("m1", httpApp));
    expect(signals.cgroupOf("m1")).toBeNull();
    await httpReady(m.privateIp, m.port);
    await signals.suspend("m1");
    // suspend resolves once SIGSTOP has taken effect on every process of the group.
    const members = groupMembers(m.pid);
    expect(members.length).toBeGreaterThanOrEqual(2);
    for (const pid of members) expect(readProcStat(pid)?.state).toBe("T");

    let answered = false;
    const response = new Promise<number>((resolve, reject) => {
      const req = request({ host: m.privateIp, port: m.port, path: "/", agent: false }, (res) => {
        answered = true;
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
    await sleep(300);
    expect(answered).toBe(false);

    signals.resume("m1");
    expect(await response).toBe(200);
    for (const pid of members) expect(readProcStat(pid)?.state).not.toBe("T");
  });

  it("stop discards a suspended machine at once, without running it again", async () => {
    const { next } = recordExits(signals);
    const m = await signals.start(runSpec("m1", httpApp));
    await httpReady(m.privateIp, m.port);
    await signals.suspend("m1");
    const started = Date.now();
    // httpApp exits 0 on SIGTERM: a 137 shows it never got to run its handler.
    const exit = await signals.stop("m1", { timeoutMs: 10_000 });
    expect(exit).toEqual({ exitCode: 137, signal: "SIGKILL", requested: true });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await next("m1")).toEqual(exit);
    await groupGone(m.pid);
  });
});

describe("ProcessDriver: checks against a machine", () => {
  it("turns from passing to critical when the machine stops", async () => {
    const m = await driver.start(runSpec("m1", httpApp));
    await httpReady(m.privateIp, m.port);
    const changes: string[] = [];
    const checks = runChecks(
      {
        alive: { type: "http", port: 8080, path: "/", interval: "100ms", timeout: "1s" },
        tcp: { type: "tcp", interval: "100ms", timeout: "1s" },
      },
      { ip: m.privateIp, port: m.port },
      (name, status) => changes.push(`${name} ${status}`),
      (port) => (port === 8080 ? m.port : port),
    );
    try {
      await waitFor("both checks' first result", () => (changes.length === 2 ? true : undefined));
      expect(changes.sort()).toEqual(["alive passing", "tcp passing"]);
      await driver.stop("m1", { timeoutMs: 10_000 });
      await waitFor("both checks critical", () => (changes.length === 4 ? true : undefined));
      expect(changes.slice(2).sort()).toEqual(["alive critical", "tcp critical"]);
    } finally {
      checks.stop();
    }
  });
});
