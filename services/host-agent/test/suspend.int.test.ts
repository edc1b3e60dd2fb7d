import { existsSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HANGAR_CGROUP } from "../src/driver/cgroup.js";
import { type CgroupRef, ProcessDriver, type RunningMachine, type SuspendMode } from "../src/driver/mod.js";
import { readCmdline, readProcStat } from "../src/driver/proc.js";
import {
  cgroupFrozen,
  cgroupPids,
  freezerVersions,
  groupGone,
  groupMembers,
  nodeScript,
  recordExits,
  removeStateDir,
  runSpec,
  tempStateDir,
} from "./harness.js";
import { waitFor } from "./wait.js";

let stateDir: string;
const drivers: ProcessDriver[] = [];

let mode: SuspendMode;

function newDriver(): ProcessDriver {
  const driver = new ProcessDriver({ stateDir, pollIntervalMs: 50, suspend: mode });
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

/**
 * A machine with state in memory and a child process: the HTTP server counts its requests in memory
 * and answers with the count, its pid and whether the wrapper's cgroup variable leaked to it; its
 * shell child writes an ever-growing counter to `ticks` every 20 ms.
 */
function counterApp(ticks: string): string[] {
  return nodeScript(`
const { spawn } = require("node:child_process");
spawn("/bin/sh", ["-c", 'i=0; while :; do i=$((i+1)); echo $i > "$0.tmp" && mv "$0.tmp" "$0"; sleep 0.02; done', ${JSON.stringify(ticks)}], { stdio: "inherit" });
let hits = 0;
require("node:http").createServer((req, res) => {
  hits++;
  res.end(JSON.stringify({ hits, pid: process.pid, leaked: process.env.HANGAR_CGROUP_PROCS ?? null }));
}).listen(Number(process.env.PORT), "127.0.0.1", () => console.log("listening"));
`);
}

interface Answer {
  hits: number;
  pid: number;
  leaked: string | null;
}

/** Sends a request (no keep-alive, no retry) and resolves with the answer whenever it comes. */
function ask(m: RunningMachine): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: m.port, path: "/", agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve(JSON.parse(body) as Answer));
    });
    req.on("error", reject);
    req.end();
  });
}

function ready(m: RunningMachine): Promise<Answer> {
  return waitFor(`machine on port ${m.port}`, () => ask(m).catch(() => undefined));
}

function ticks(file: string): number {
  try {
    return Number(readFileSync(file, "utf8"));
  } catch {
    return 0;
  }
}

/** Waits until the counter file moves past `after`. */
function ticksPast(file: string, after: number): Promise<number> {
  return waitFor(`ticks past ${after}`, () => {
    const now = ticks(file);
    return now > after ? now : undefined;
  });
}

/** The cgroup of `pid` in the hierarchy of `ref`, as /proc/<pid>/cgroup says; null once it is gone. */
function cgroupOfPid(pid: number, ref: CgroupRef): string | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, "utf8");
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    const [, controllers, path] = line.split(":");
    if (ref.version === 2 ? controllers === "" : controllers?.split(",").includes("freezer"))
      return path ?? null;
  }
  return null;
}

/**
 * Every process of the machine's group is in its cgroup: nothing runs outside the freezer. Asked of
 * each process itself, since the shell's short-lived children come and go while the test looks.
 */
function expectWholeTreeIn(ref: CgroupRef, m: RunningMachine): number[] {
  const members = groupMembers(m.pid);
  // The wrapper, node, its shell and the shell's sleep (or the moment between two sleeps).
  expect(members.length).toBeGreaterThanOrEqual(3);
  const relative = ref.path.slice(ref.path.indexOf(`/${HANGAR_CGROUP}/`));
  for (const pid of members) {
    const path = cgroupOfPid(pid, ref);
    if (path !== null) expect(path).toBe(relative);
  }
  return members;
}

const versions = freezerVersions();

it("a root agent on a host with a cgroup freezer uses it, cgroup v2 first", () => {
  const auto = new ProcessDriver({ stateDir });
  drivers.push(auto);
  if (versions.length === 0) expect(auto.suspendMode().mode).toBe("signals");
  else expect(auto.suspendMode()).toEqual({ mode: versions.includes(2) ? "cgroup-v2" : "cgroup-v1" });
});

describe.each(versions.map((v) => `cgroup-v${v}` as const))(
  "ProcessDriver: suspend with the %s freezer",
  (m) => {
    beforeEach(() => {
      mode = m;
    });

    it("suspend freezes the whole process tree; resume continues the same processes with their memory", async () => {
      const driver = newDriver();
      expect(driver.suspendMode()).toEqual({ mode });
      const file = join(stateDir, "ticks");
      const m = await driver.start(runSpec("m1", counterApp(file)));
      const ref = driver.cgroupOf("m1");
      if (!ref) throw new Error("a machine started with a freezer has a cgroup");
      expect(ref.path.endsWith("/m1")).toBe(true);
      expect(ref.version).toBe(mode === "cgroup-v1" ? 1 : 2);

      const first = await ready(m);
      // The wrapper's instruction to join the cgroup is not part of the app's environment.
      expect(first.leaked).toBeNull();
      await ticksPast(file, 0);
      const members = expectWholeTreeIn(ref, m);
      // The shell's short-lived children (its sleep, echo's mv) come and go; the rest stays.
      const lasting = members.filter((pid) => !shortLived(pid));
      expect(cgroupFrozen(ref)).toBe(false);

      await driver.suspend("m1");
      expect(cgroupFrozen(ref)).toBe(true);
      expectWholeTreeIn(ref, m);
      // Not SIGSTOP: the processes are not in the stopped state a parent or a debugger could see.
      for (const pid of members) expect(readState(pid)).not.toBe("T");
      const frozenAt = ticks(file);
      let answered = false;
      const pending = ask(m).then((a) => {
        answered = true;
        return a;
      });
      await sleep(300);
      expect(ticks(file)).toBe(frozenAt);
      expect(answered).toBe(false);

      const resumedAt = performance.now();
      driver.resume("m1");
      const answer = await pending;
      const wakeMs = performance.now() - resumedAt;
      // Same process, same memory: the in-memory count went on from where it was.
      expect(answer).toEqual({ hits: first.hits + 1, pid: first.pid, leaked: null });
      expect(cgroupFrozen(ref)).toBe(false);
      await ticksPast(file, frozenAt);
      // The same processes (the app reports its pid inside its namespace, checked above).
      expect(lasting.length).toBeGreaterThanOrEqual(4);
      expect(groupMembers(m.pid)).toEqual(expect.arrayContaining(lasting));
      // Printed, not asserted: tests never fail on a duration (pnpm bench scale measures wakes).
      console.log(`[suspend.int] ${mode}: resume to the first answer took ${wakeMs.toFixed(2)} ms`);
    });

    it("stop discards a suspended machine at once and records the exit; its cgroup is thawed for the next run", async () => {
      const driver = newDriver();
      const { next } = recordExits(driver);
      const file = join(stateDir, "ticks");
      const m = await driver.start(runSpec("m1", counterApp(file)));
      const ref = driver.cgroupOf("m1") as CgroupRef;
      await ready(m);
      await driver.suspend("m1");

      const started = performance.now();
      // The app would exit 143 on SIGTERM; 137 shows it never ran again.
      const exit = await driver.stop("m1", { signal: "SIGTERM", timeoutMs: 60_000 });
      const tookMs = performance.now() - started;
      expect(exit).toEqual({ exitCode: 137, signal: "SIGKILL", requested: true });
      expect(await next("m1")).toEqual(exit);
      // At once, not after the SIGTERM's timeout (a bound on behaviour, far from any timing).
      expect(tookMs).toBeLessThan(30_000);
      await groupGone(m.pid);
      await waitFor("an empty cgroup", () => (cgroupPids(ref).length === 0 ? true : undefined));
      expect(cgroupFrozen(ref)).toBe(false);

      const again = await driver.start(runSpec("m1", counterApp(file)));
      expect(driver.cgroupOf("m1")).toEqual(ref);
      expect((await ready(again)).hits).toBe(1);
    });

    it("a new driver adopts a suspended machine frozen, resumes it, and discards it on stop", async () => {
      const file = join(stateDir, "ticks");
      const a = newDriver();
      const m = await a.start(runSpec("m1", counterApp(file)));
      const first = await ready(m);
      await a.suspend("m1");
      await a.close();

      const b = newDriver();
      expect((await b.adopt()).running).toEqual([m]);
      const ref = b.cgroupOf("m1") as CgroupRef;
      expect(cgroupFrozen(ref)).toBe(true);
      const frozenAt = ticks(file);
      await sleep(200);
      expect(ticks(file)).toBe(frozenAt);

      b.resume("m1");
      expect(await ask(m)).toEqual({ hits: first.hits + 1, pid: first.pid, leaked: null });
      await ticksPast(file, frozenAt);

      await b.suspend("m1");
      await b.close();
      // Adopted again while frozen: the stop still knows it is suspended and discards it.
      const c = newDriver();
      const { next } = recordExits(c);
      await c.adopt();
      const started = performance.now();
      const exit = await c.stop("m1", { timeoutMs: 10_000 });
      expect(exit).toEqual({ exitCode: 137, signal: "SIGKILL", requested: true });
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(await next("m1")).toEqual(exit);
      await groupGone(m.pid);
    });

    it("destroy of a suspended machine kills it and removes its cgroup", async () => {
      const driver = newDriver();
      const { next } = recordExits(driver);
      const m = await driver.start(runSpec("m1", counterApp(join(stateDir, "ticks"))));
      const ref = driver.cgroupOf("m1") as CgroupRef;
      await ready(m);
      await driver.suspend("m1");
      await driver.destroy("m1");
      expect(await next("m1")).toEqual({ exitCode: 137, signal: "SIGKILL", requested: true });
      expect(existsSync(ref.path)).toBe(false);
      await groupGone(m.pid);
    });

    it("a process that left the machine's process group is still frozen, and dies with the run", async () => {
      const driver = newDriver();
      const { next } = recordExits(driver);
      const file = join(stateDir, "escaped");
      // setsid puts the loop in a session (and group) of its own: signals to the group miss it.
      const m = await driver.start(
        runSpec("m1", [
          "/bin/sh",
          "-c",
          `setsid /bin/sh -c 'i=0; while :; do i=$((i+1)); echo $i > "$0.tmp" && mv "$0.tmp" "$0"; sleep 0.02; done' ${file} & sleep 30`,
        ]),
      );
      const ref = driver.cgroupOf("m1") as CgroupRef;
      await ticksPast(file, 0);
      // In the machine's pid namespace every process but the wrapper and crun is out of their group.
      const escaped = cgroupPids(ref).filter((pid) => readProcStat(pid)?.pgrp !== m.pid);
      expect(escaped.length).toBeGreaterThanOrEqual(1);

      await driver.suspend("m1");
      const frozenAt = ticks(file);
      await sleep(200);
      expect(ticks(file)).toBe(frozenAt);
      driver.resume("m1");
      await ticksPast(file, frozenAt);

      await driver.stop("m1", { timeoutMs: 5_000 });
      await next("m1");
      await waitFor("the escaped loop to be gone", () => (cgroupPids(ref).length === 0 ? true : undefined));
    });
  },
);

/**
 * One of the counter shell's short-lived children: its sleep or mv, or a fork of the shell that has
 * not yet exec'd one (it still shows the shell's command line, under the shell).
 */
function shortLived(pid: number): boolean {
  const cmdline = readCmdline(pid);
  if (cmdline === null || cmdline === undefined || /(^|\/)(sleep|mv)$/.test(cmdline[0] ?? "")) return true;
  const ppid = readProcStat(pid)?.ppid;
  const parent = ppid === undefined ? undefined : readCmdline(ppid);
  return parent !== null && parent !== undefined && parent.join("\0") === cmdline.join("\0");
}

function readState(pid: number): string | undefined {
  try {
    return /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  } catch {
    return undefined;
  }
}
