import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmdirSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deleteContainer } from "@hangar/oci";
import {
  CgroupFreezer,
  type CgroupRef,
  type CgroupVersion,
  cgroupScope,
  MachineCgroup,
} from "../src/driver/cgroup.js";
import { CgroupLimits } from "../src/driver/cgroup-limits.js";
import type { ExitInfo, MachineRunSpec, ProcessDriver } from "../src/driver/mod.js";
import { releaseNetnsAddress } from "../src/driver/netns.js";
import { readClaimNote } from "../src/driver/parts/address.js";
import { isSameLiveProcess, readProcStat } from "../src/driver/proc.js";
import { machinePids } from "../src/driver/ps.js";
import { mountPoints, rootfsMountRoot } from "../src/driver/rootfs.js";
import { containerIdOf } from "../src/driver/sandbox.js";
import { listMachineIds, MachineDir } from "../src/driver/state.js";
import { waitFor } from "./wait.js";

// Machines run detached and outlive whoever started them, this test process included: every state
// folder a test makes is swept, by SIGKILL to each recorded process group, on exit and on signals.
const stateDirs = new Set<string>();

/** SIGKILLs the process group of every run recorded under `stateDir` that still lives. */
export function killRecordedMachines(stateDir: string, depth = 2): void {
  let ids: string[];
  try {
    ids = readdirSync(stateDir);
  } catch {
    return;
  }
  for (const id of ids) {
    let run: { pid: number | null; startTime: number | null };
    try {
      run = JSON.parse(readFileSync(join(stateDir, id, "run.json"), "utf8")) as typeof run;
    } catch {
      // No run.json: a host's folder of machines (tests run several hosts on one state folder), or nothing.
      if (depth > 1) killRecordedMachines(join(stateDir, id), depth - 1);
      continue;
    }
    if (!run.pid || !run.startTime || !isSameLiveProcess(run.pid, run.startTime)) continue;
    // The group, and the machine's init and app, which lead groups of their own in its pid namespace.
    for (const pid of machinePids({ leader: run.pid, cgroupPids: [] })) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
}

/** The host's freezers (v1 and v2) for the machines of `stateDir`: a test may use either. */
function freezersOf(stateDir: string): CgroupFreezer[] {
  return ([1, 2] as const).flatMap((version) => {
    const found = CgroupFreezer.detect(cgroupScope(stateDir), { version });
    return "freezer" in found ? [found.freezer] : [];
  });
}

/** The cgroup versions this host can freeze with (as root); empty where suspend uses signals. */
export function freezerVersions(): CgroupVersion[] {
  // A probe scope: detect makes no scope folder, so it leaves nothing behind.
  return freezersOf("probe").map((f) => f.version);
}

/** Best effort, synchronously (for process exit): kills what is in `stateDir`'s cgroups, removes them. */
function sweepCgroups(stateDir: string): void {
  for (const freezer of freezersOf(stateDir)) sweepScope(freezer);
}

function sweepScope(freezer: CgroupFreezer): void {
  for (const cgroup of freezer.machines()) {
    for (const pid of cgroup.pids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    cgroup.thaw();
    try {
      rmdirSync(cgroup.path);
    } catch {
      // Its processes may need a moment to die; nothing waits at exit.
    }
  }
  try {
    rmdirSync(freezer.scopePath);
  } catch {
    // Not empty, or never made.
  }
}

function sweep(): void {
  for (const dir of stateDirs) {
    killRecordedMachines(dir);
    sweepCgroups(dir);
  }
}

process.on("exit", sweep);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  const onSignal = () => {
    sweep();
    if (process.listenerCount(signal) > 1) return;
    process.off(signal, onSignal);
    process.kill(process.pid, signal);
  };
  process.on(signal, onSignal);
}

/** A fresh state folder, swept of its machines when the process ends. */
export async function tempStateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "hangar-driver-"));
  // Machines run as their range's ids, strangers to host root's 0700 folder: tests hand them files
  // (ticks, go-signals) in this folder, so they may write in it.
  await chmod(dir, 0o777);
  stateDirs.add(dir);
  return dir;
}

/** Unmounts what is mounted under `stateDir` or its machines' rootfs mount root, deepest first. */
export function unmountUnder(stateDir: string): void {
  const roots = [stateDir, rootfsMountRoot(stateDir)];
  const under = mountPoints()
    .filter((p) => roots.some((root) => p.startsWith(`${root}/`)))
    .sort((a, b) => b.length - a.length);
  for (const path of under) {
    try {
      execFileSync("umount", [path], { stdio: "ignore" });
    } catch {
      // A process SIGKILLed a moment ago may still hold it: detach it now, it goes when they do. A
      // bind inside another one may have gone with it already.
      if (mountPoints().includes(path)) execFileSync("umount", ["-l", path], { stdio: "ignore" });
    }
  }
}

/** Kills what runs under `stateDir` and deletes it, and the machines' cgroups. */
export async function removeStateDir(stateDir: string): Promise<void> {
  killRecordedMachines(stateDir);
  // Tests that run several hosts give each a folder of its own in the state folder.
  const folders = [stateDir, ...subfolders(stateDir)];
  const limits = CgroupLimits.detect();
  for (const folder of folders) {
    for (const freezer of freezersOf(folder)) await freezer.removeScope();
    if ("limits" in limits) await limits.limits.removeScope(cgroupScope(folder));
    // Never delete through a mounted root filesystem.
    unmountUnder(folder);
    // What lives outside the folder: crun's state of each machine, and its host-wide address claim
    // (left by every test otherwise, until the claims fill the machine block).
    for (const id of await listMachineIds(folder)) {
      await deleteContainer(containerIdOf(folder, id));
      const dir = new MachineDir(folder, id);
      for (const address of new Set([(await dir.readRun())?.privateIp, await readClaimNote(dir.path)]))
        if (address) await releaseNetnsAddress(id, address);
    }
  }
  await rm(stateDir, { recursive: true, force: true });
  for (const folder of folders) await rm(rootfsMountRoot(folder), { recursive: true, force: true });
  stateDirs.delete(stateDir);
}

function subfolders(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(dir, e.name));
  } catch {
    return [];
  }
}

/** A run spec with test defaults. */
export function runSpec(
  machineId: string,
  cmd: string[],
  extra: Partial<MachineRunSpec> = {},
): MachineRunSpec {
  return {
    machineId,
    app: "app1",
    region: "local",
    imageRef: "local/app1",
    instanceId: `inst-${machineId}`,
    cmd,
    cwd: tmpdir(),
    env: {},
    ...extra,
  };
}

/** argv of a shell script. */
export function sh(script: string): string[] {
  return ["/bin/sh", "-c", script];
}

/** argv of a node script. */
export function nodeScript(source: string): string[] {
  return [process.execPath, "-e", source];
}

/**
 * An HTTP app as Fly apps are written: binds 0.0.0.0:$PORT, answers with its environment, logs to stdout
 * and stderr, and exits 0 on SIGTERM.
 */
export const httpApp = nodeScript(`
const server = require("node:http").createServer((req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ port: process.env.PORT, ip: process.env.FLY_PRIVATE_IP, hello: process.env.HELLO }));
});
server.listen(Number(process.env.PORT), "0.0.0.0", () => {
  console.log("listening on " + process.env.PORT);
  console.error("stderr works");
});
process.on("SIGTERM", () => { console.log("bye"); process.exit(0); });
`);

/** Records every exit a driver reports. */
export function recordExits(driver: ProcessDriver): {
  exits: Array<{ machineId: string; exit: ExitInfo }>;
  next: (machineId: string) => Promise<ExitInfo>;
} {
  const exits: Array<{ machineId: string; exit: ExitInfo }> = [];
  driver.onExit((machineId, exit) => exits.push({ machineId, exit }));
  const next = (machineId: string) =>
    waitFor(`the exit of ${machineId}`, () => exits.find((e) => e.machineId === machineId)?.exit);
  return { exits, next };
}

/** The live (not zombie) processes of process group `pgid`. */
export function groupMembers(pgid: number): number[] {
  // The machine's init and app lead process groups of their own, in the machine's pid namespace.
  return machinePids({ leader: pgid, cgroupPids: [] }).filter((pid) => readProcStat(pid)?.state !== "Z");
}

/** Waits until process group `pgid` has no live process left (a SIGKILL is delivered asynchronously). */
export function groupGone(pgid: number): Promise<true> {
  return waitFor(`group ${pgid} to be gone`, () => (groupMembers(pgid).length === 0 ? true : undefined));
}

/** Waits until the machine answers HTTP on ip:port and returns the parsed body. */
export function httpReady(ip: string, port: number): Promise<Record<string, unknown>> {
  return waitFor(`http://${ip}:${port}`, async () => {
    try {
      const res = await fetch(`http://${ip}:${port}/`);
      return (await res.json()) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  });
}

/** Whether the kernel says every task in the cgroup is frozen (v1 freezer.state, v2 cgroup.events). */
export function cgroupFrozen(ref: CgroupRef): boolean {
  if (ref.version === 1) return readFileSync(join(ref.path, "freezer.state"), "utf8").trim() === "FROZEN";
  return /^frozen 1$/m.test(readFileSync(join(ref.path, "cgroup.events"), "utf8"));
}

/** The pids in a cgroup now. */
export function cgroupPids(ref: CgroupRef): number[] {
  return new MachineCgroup(ref.version, ref.path).pids();
}
