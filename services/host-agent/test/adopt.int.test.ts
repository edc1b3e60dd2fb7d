import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { BUNDLE_ROOT } from "@hangar/oci";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  DriverClosedError,
  MachineAlreadyRunningError,
  ProcessDriver,
  type RunningMachine,
} from "../src/driver/mod.js";
import { isSameLiveProcess, readProcStat } from "../src/driver/proc.js";
import { containerIdOf } from "../src/driver/sandbox.js";
import { machineWrapper, wrapperArgs } from "../src/driver/wrapper.js";
import {
  groupGone,
  groupMembers,
  recordExits,
  removeStateDir,
  runSpec,
  sh,
  tempStateDir,
} from "./harness.js";
import { waitFor } from "./wait.js";

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
const fixture = fileURLToPath(new URL("./fixtures/agent.ts", import.meta.url));

let stateDir: string;
const drivers: ProcessDriver[] = [];

/** A driver on the test's state folder, closed after the test (closing leaves its machines running). */
function newDriver(): ProcessDriver {
  const driver = new ProcessDriver({ stateDir, pollIntervalMs: 50 });
  drivers.push(driver);
  return driver;
}

/** A machine that runs until `<stateDir>/<file>` appears, then exits with `code`. */
function exitsWhenFileAppears(file: string, code: number): string[] {
  return sh(`while [ ! -e "${join(stateDir, file)}" ]; do sleep 0.05; done; exit ${code}`);
}

beforeEach(async () => {
  stateDir = await tempStateDir();
});

afterEach(async () => {
  for (const driver of drivers.splice(0)) await driver.close();
  await removeStateDir(stateDir);
});

describe("adopt", () => {
  it("removes a bundle a dropped agent left behind (it holds the machine's environment)", async () => {
    const a = newDriver();
    await a.start(runSpec("bundled", ["sleep", "30"]));
    const bundle = join(BUNDLE_ROOT, containerIdOf(stateDir, "bundled"));
    // As an agent killed between writing the bundle and removing it leaves it.
    await mkdir(bundle, { recursive: true, mode: 0o700 });
    await writeFile(join(bundle, "config.json"), "{}", { mode: 0o600 });
    const b = newDriver();
    const adopted = await b.adopt();
    expect(adopted.running.map((m) => m.machineId)).toEqual(["bundled"]);
    expect(existsSync(bundle)).toBe(false);
  });

  it("a new driver adopts what the dropped one left running, and reports what died meanwhile", async () => {
    const a = newDriver();
    const waiting = await a.start(runSpec("waiting", exitsWhenFileAppears("go-waiting", 7)));
    const sleeper = await a.start(runSpec("sleeper", ["sleep", "30"]));
    const orphan = await a.start(runSpec("orphan", exitsWhenFileAppears("go-orphan", 5)));
    await a.close();

    // "orphan" ends while no agent runs.
    await writeFile(join(stateDir, "go-orphan"), "");
    await waitFor("orphan to end", () =>
      isSameLiveProcess(orphan.pid, orphan.startTime) ? undefined : true,
    );

    const b = newDriver();
    const { exits, next } = recordExits(b);
    const adopted = await b.adopt();
    const byId = (list: RunningMachine[]) => Object.fromEntries(list.map((m) => [m.machineId, m]));
    expect(byId(adopted.running)).toEqual({ waiting, sleeper });
    expect(adopted.exited).toEqual([{ machineId: "orphan", exit: { exitCode: 5, requested: false } }]);
    expect(byId(b.running())).toEqual({ waiting, sleeper });

    // Adopted means owned: no second copy, and adopting again changes nothing.
    await expect(b.start(runSpec("waiting", ["sleep", "30"]))).rejects.toThrow(MachineAlreadyRunningError);
    expect(await b.adopt()).toEqual({ running: expect.arrayContaining([waiting, sleeper]), exited: [] });

    // An adopted machine is not our child: its exit is still seen, with its code.
    await writeFile(join(stateDir, "go-waiting"), "");
    expect(await next("waiting")).toEqual({ exitCode: 7, requested: false });
    expect(await b.stop("sleeper", { timeoutMs: 5_000 })).toEqual({
      exitCode: 143,
      signal: "SIGTERM",
      requested: true,
    });
    expect(exits.map((e) => e.machineId).sort()).toEqual(["sleeper", "waiting"]);
    await groupGone(sleeper.pid);

    // Everything was reported once: a third agent finds nothing to report.
    expect(await newDriver().adopt()).toEqual({ running: [], exited: [] });
  });

  it("a stop asked by the previous agent is reported as requested by the next", async () => {
    const a = newDriver();
    const m = await a.start(runSpec("m1", sh("trap 'exit 0' TERM; while :; do sleep 0.05; done")));
    // A SIGTERM before the shell has set its trap would kill it (143): wait for its first sleep.
    await waitFor("the trap", () => (groupMembers(m.pid).length >= 5 ? true : undefined));
    // Its refusal is awaited from the start: the stop may end before close() does.
    const stopping = expect(a.stop("m1", { timeoutMs: 30_000 })).rejects.toThrow(DriverClosedError);
    await a.close();
    await stopping;

    const b = newDriver();
    const { exits } = recordExits(b);
    const adopted = await b.adopt();
    const exit = adopted.exited[0]?.exit ?? (await waitFor("the exit", () => exits[0]?.exit));
    expect(exit).toEqual({ exitCode: 0, requested: true });
  });

  it("does not adopt a live process whose start time differs (its pid was reused)", async () => {
    const b = newDriver();
    const stranger = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      const pid = stranger.pid ?? -1;
      const startTime = readProcStat(pid)?.startTime ?? -1;
      await mkdir(join(stateDir, "m1"));
      await writeFile(
        join(stateDir, "m1", "run.json"),
        JSON.stringify({
          runId: "r1",
          spec: runSpec("m1", ["sleep", "30"]),
          privateIp: "127.77.0.1",
          port: 1,
          pid,
          startTime: startTime - 1,
        }),
      );
      const adopted = await b.adopt();
      expect(adopted).toEqual({
        running: [],
        exited: [{ machineId: "m1", exit: { exitCode: null, requested: false } }],
      });
      // Nor was the stranger touched.
      expect(isSameLiveProcess(pid, startTime)).toBe(true);
    } finally {
      stranger.kill("SIGKILL");
    }
  });

  it("finds a run whose agent died between spawning it and recording its pid", async () => {
    const dir = join(stateDir, "m1");
    await mkdir(dir);
    await writeFile(
      join(dir, "run.json"),
      JSON.stringify({
        runId: "r1",
        spec: runSpec("m1", ["sleep", "30"]),
        privateIp: "127.77.0.1",
        port: 1,
        pid: null,
        startTime: null,
      }),
    );
    const wrapper = spawn(await machineWrapper(), wrapperArgs(join(dir, "exit"), ["sleep", "30"]), {
      detached: true,
      stdio: "ignore",
    });
    wrapper.unref();
    const pid = wrapper.pid ?? -1;
    const b = newDriver();
    try {
      const adopted = await b.adopt();
      expect(adopted.running).toEqual([
        {
          machineId: "m1",
          pid,
          startTime: readProcStat(pid)?.startTime,
          privateIp: "127.77.0.1",
          privateIpv6: "",
          port: 1,
        },
      ]);
      expect(JSON.parse(readFileSync(join(dir, "run.json"), "utf8"))).toMatchObject({ pid });
    } finally {
      process.kill(-pid, "SIGKILL");
    }
  });

  it("survives kill -9 of the agent process: the machine runs on and the next agent adopts it", async () => {
    const agent = spawn(process.execPath, ["--conditions=source", "--import", "tsx", fixture, stateDir], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let machine: RunningMachine;
    try {
      const [line] = (await once(createInterface({ input: agent.stdout }), "line")) as [string];
      machine = JSON.parse(line) as RunningMachine;
    } finally {
      agent.kill("SIGKILL");
    }
    await once(agent, "exit");
    expect(isSameLiveProcess(machine.pid, machine.startTime)).toBe(true);

    const b = newDriver();
    const lines: string[] = [];
    b.onLog((_id, { line }) => lines.push(line));
    const { next } = recordExits(b);
    const before = new Set(readFileSync(join(stateDir, "survivor", "stdout.log"), "utf8").split("\n"));
    expect((await b.adopt()).running).toEqual([machine]);
    // Tailing resumes at the end: new ticks arrive, none that was already in the file.
    await waitFor("new log lines", () => (lines.length >= 3 ? true : undefined));
    for (const l of lines) expect(before.has(l)).toBe(false);

    expect(await b.stop("survivor", { timeoutMs: 5_000 })).toEqual({
      exitCode: 143,
      signal: "SIGTERM",
      requested: true,
    });
    expect(await next("survivor")).toEqual({ exitCode: 143, signal: "SIGTERM", requested: true });
    await groupGone(machine.pid);
  });
});
