import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CGROUP_ENV, decodeWaitStatus, PERL, readExitStatus, wrapperArgs } from "./wrapper.js";

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
