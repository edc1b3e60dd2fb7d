import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CGROUP_ENV,
  decodeWaitStatus,
  OOM_SCORE_ADJ_ENV,
  PERL,
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
  it("passes the exit file and the argv after --, untouched", () => {
    const args = wrapperArgs("/state/m1/exit", ["node", "-e", "x", "--", "-y"]);
    expect(args.slice(2)).toEqual(["--", "/state/m1/exit", "node", "-e", "x", "--", "-y"]);
    expect(args[0]).toBe("-e");
  });

  it("leaves uncatchable and non-terminating signals at their default", () => {
    const script = wrapperArgs("/x", ["true"])[1] ?? "";
    const caught = /qw\(([^)]*)\)/.exec(script)?.[1]?.split(" ") ?? [];
    expect(caught).toEqual(
      expect.arrayContaining(["TERM", "INT", "HUP", "QUIT", "USR1", "USR2", "ALRM", "XCPU"]),
    );
    for (const name of ["KILL", "STOP", "CHLD", "CONT", "TSTP"]) expect(caught).not.toContain(name);
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
      const child = spawn(PERL, wrapperArgs(join(dir, "exit"), cmd), {
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
