import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { signalNumber } from "./signals.js";
import {
  CGROUP_ENV,
  decodeWaitStatus,
  machineWrapper,
  mustBeOwn,
  OOM_SCORE_ADJ_ENV,
  readExitStatus,
  wrapperArgs,
} from "./wrapper.js";

describe("decodeWaitStatus", () => {
  it("reads a normal exit", () => {
    expect(decodeWaitStatus(0)).toEqual({ exitCode: 0 });
    expect(decodeWaitStatus(3 << 8)).toEqual({ exitCode: 3 });
    expect(decodeWaitStatus(130 << 8)).toEqual({ exitCode: 130 });
  });

  it("reads a death by signal as 128+n with the signal's name", () => {
    expect(decodeWaitStatus(15)).toEqual({ exitCode: 143, signal: "SIGTERM" });
    expect(decodeWaitStatus(9)).toEqual({ exitCode: 137, signal: "SIGKILL" });
    // 0x80 is the core-dump bit.
    expect(decodeWaitStatus(0x80 | 6)).toEqual({ exitCode: 134, signal: "SIGABRT" });
  });
});

describe("wrapperArgs", () => {
  it("passes the exit file, then the argv untouched", () => {
    expect(wrapperArgs("/state/m1/exit", ["node", "-e", "x", "--", "-y"])).toEqual([
      "/state/m1/exit",
      "node",
      "-e",
      "x",
      "--",
      "-y",
    ]);
  });
});

describe("machineWrapper", () => {
  it("builds one static binary per source and hands back the same path", async () => {
    const path = await machineWrapper();
    expect(path).toMatch(/\/hangar-wrapper-[0-9a-f]{16}$/);
    expect(await machineWrapper()).toBe(path);
  });
});

/** Lowering an oom_score_adj takes CAP_SYS_RESOURCE (bit 24), which some containers drop even for root. */
const mayLowerOomScore =
  ((BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "0"}`) >>
    24n) &
    1n) ===
  1n;

describe("the wrapper joining a cgroup", () => {
  /** Runs `cmd` under the wrapper, detached (it SIGKILLs its own group at the end); stdout and stderr. */
  async function runWrapped(env: Record<string, string>, cmd: string[]) {
    const dir = await mkdtemp(join(tmpdir(), "hangar-wrapper-test-"));
    try {
      const child = spawn(await machineWrapper(), wrapperArgs(join(dir, "exit"), cmd), {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => {
        stdout += d;
      });
      child.stderr.on("data", (d: Buffer) => {
        stderr += d;
      });
      const [code] = (await once(child, "close")) as [number | null];
      return { pid: child.pid, code, stdout, stderr, exitStatus: await readExitStatus(join(dir, "exit")) };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it("writes its own pid to the file named by CGROUP_ENV before forking, and hides the variable from the app", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hangar-wrapper-procs-"));
    try {
      const procs = join(dir, "cgroup.procs");
      const run = await runWrapped({ [CGROUP_ENV]: procs }, [
        "/bin/sh",
        "-c",
        `echo "\${${CGROUP_ENV}-unset}"`,
      ]);
      expect(run.stdout).toBe("unset\n");
      expect(run.exitStatus).toBe(0);
      expect(await readFile(procs, "utf8")).toBe(`${run.pid}\n`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("joins every cgroup.procs file of a ':'-separated list", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hangar-wrapper-procs-"));
    try {
      const files = ["freezer", "memory", "pids"].map((name) => join(dir, `${name}.procs`));
      const run = await runWrapped({ [CGROUP_ENV]: files.join(":") }, ["true"]);
      expect(run.exitStatus).toBe(0);
      for (const file of files) expect(await readFile(file, "utf8")).toBe(`${run.pid}\n`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!mayLowerOomScore)(
    "keeps itself out of the OOM killer's reach (-1000) and execs the app with 0, or the value asked for",
    async () => {
      // The app prints its own score and its parent's (the wrapper's).
      const cmd = ["/bin/sh", "-c", "cat /proc/self/oom_score_adj /proc/$PPID/oom_score_adj"];
      const byDefault = await runWrapped({}, cmd);
      expect(byDefault.stdout).toBe("0\n-1000\n");
      const kept = await runWrapped({ [OOM_SCORE_ADJ_ENV]: "-1000" }, cmd);
      expect(kept.stdout).toBe("-1000\n-1000\n");
    },
  );

  it.skipIf(mayLowerOomScore)("runs the app all the same where it may not lower its own score", async () => {
    const run = await runWrapped({}, ["/bin/sh", "-c", "cat /proc/self/oom_score_adj"]);
    expect(run.stdout).toBe(`${readFileSync("/proc/self/oom_score_adj", "utf8").trim()}\n`);
    expect(run.exitStatus).toBe(0);
  });

  it("catches every signal that would kill it, leaves uncatchable and non-terminating ones at their default", async () => {
    // The app prints the signals its parent, the wrapper, catches (SigCgt: bit n-1 for signal n).
    const run = await runWrapped({}, ["/bin/sh", "-c", "grep SigCgt /proc/$PPID/status"]);
    const caught = BigInt(`0x${/SigCgt:\s*([0-9a-f]+)/.exec(run.stdout)?.[1] ?? "0"}`);
    const has = (name: string) => ((caught >> BigInt(signalNumber(name as NodeJS.Signals) - 1)) & 1n) === 1n;
    for (const name of ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGXCPU"])
      expect(has(name), name).toBe(true);
    for (const name of ["SIGKILL", "SIGSTOP", "SIGCHLD", "SIGCONT", "SIGTSTP"])
      expect(has(name), name).toBe(false);
  });

  it("execs the app with no signal caught, ignored or blocked", async () => {
    const run = await runWrapped({}, ["cat", "/proc/self/status"]);
    const masks = run.stdout.split("\n").filter((l) => /^Sig(Blk|Ign|Cgt):/.test(l));
    expect(masks).toEqual([
      "SigBlk:\t0000000000000000",
      "SigIgn:\t0000000000000000",
      "SigCgt:\t0000000000000000",
    ]);
  });

  it("records the app's death by a signal sent to the group, and lives to write it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hangar-wrapper-test-"));
    try {
      const child = spawn(await machineWrapper(), wrapperArgs(join(dir, "exit"), ["sleep", "30"]), {
        detached: true,
        stdio: ["ignore", "ignore", "ignore", "pipe"],
      });
      // The wrapper writes the app's pid to fd 3 once its handlers are set.
      const [line] = (await once(child.stdio[3] as NodeJS.ReadableStream, "data")) as [Buffer];
      expect(Number.parseInt(line.toString(), 10)).toBeGreaterThan(0);
      process.kill(-(child.pid as number), "SIGTERM");
      const [code, signal] = (await once(child, "exit")) as [number | null, string | null];
      // The wrapper ends by SIGKILLing its own group, itself included.
      expect({ code, signal }).toEqual({ code: null, signal: "SIGKILL" });
      expect(await readExitStatus(join(dir, "exit"))).toBe(signalNumber("SIGTERM"));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses an oom_score_adj that is not a number, before the app runs", async () => {
    const run = await runWrapped({ [OOM_SCORE_ADJ_ENV]: "1; rm" }, ["/bin/sh", "-c", "echo app ran"]);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain("is not a number");
    expect(run.exitStatus).toBeNull();
  });

  it("dies before the app runs when it cannot join", async () => {
    const run = await runWrapped({ [CGROUP_ENV]: "/nonexistent/hangar/cgroup.procs" }, [
      "/bin/sh",
      "-c",
      "echo app ran",
    ]);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain("/nonexistent/hangar/cgroup.procs");
    expect(run.code).not.toBe(0);
    expect(run.exitStatus).toBeNull();
  });
});

describe("the wrapper's build folder", () => {
  it("is used only when it is this user's own folder or file that no one else can write", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hangar-wrapper-own-"));
    try {
      const uid = process.getuid?.() ?? 0;
      const own = join(dir, "own");
      await mkdir(own, { mode: 0o755 });
      await chmod(own, 0o755);
      await expect(mustBeOwn(own, uid, true)).resolves.toBeUndefined();
      const file = join(own, "hangar-wrapper-x");
      await writeFile(file, "x", { mode: 0o755 });
      await chmod(file, 0o755);
      await expect(mustBeOwn(file, uid, false)).resolves.toBeUndefined();

      const open = join(dir, "open");
      await mkdir(open);
      await chmod(open, 0o777);
      await expect(mustBeOwn(open, uid, true)).rejects.toThrow(/that only it can write/);
      const writable = join(own, "writable");
      await writeFile(writable, "x");
      await chmod(writable, 0o775);
      await expect(mustBeOwn(writable, uid, false)).rejects.toThrow(/not a file of uid/);
      const link = join(dir, "link");
      await symlink(own, link);
      await expect(mustBeOwn(link, uid, true)).rejects.toThrow(/not a folder of uid/);
      await expect(mustBeOwn(own, uid + 1, true)).rejects.toThrow(/remove it and start again/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
