import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** The limits every build's RUN steps share (HANGAR_BUILDER_MEMORY_MB, _CPUS, _PIDS). */
export interface BuildLimits {
  memoryBytes: number;
  /** CPU time per wall second, in cores (1.5: one and a half). */
  cpus: number;
  pids: number;
}

const ROOT = "/sys/fs/cgroup";
/** The folder of builds' cgroups in each hierarchy. */
const BUILDS = "hangar-builds";
const CPU_PERIOD_US = 100_000;

/** The cgroup.procs files a build's RUN steps join, and the control files that bound them. */
export interface BuildCgroup {
  procs: string[];
  /** Removes the build's cgroups (its RUN processes are gone by then). */
  close(): Promise<void>;
}

/** The files to write, by cgroup folder, for `limits` under cgroup v2 or v1. */
export function limitFiles(
  v2: boolean,
  name: string,
  limits: BuildLimits,
): Map<string, Record<string, string>> {
  const quota = String(Math.max(1000, Math.round(limits.cpus * CPU_PERIOD_US)));
  if (v2) {
    return new Map<string, Record<string, string>>([
      [
        join(ROOT, BUILDS, name),
        {
          "memory.max": String(limits.memoryBytes),
          "cpu.max": `${quota} ${CPU_PERIOD_US}`,
          "pids.max": String(limits.pids),
        },
      ],
    ]);
  }
  return new Map<string, Record<string, string>>([
    [join(ROOT, "memory", BUILDS, name), { "memory.limit_in_bytes": String(limits.memoryBytes) }],
    [
      join(ROOT, "cpu", BUILDS, name),
      { "cpu.cfs_period_us": String(CPU_PERIOD_US), "cpu.cfs_quota_us": quota },
    ],
    [join(ROOT, "pids", BUILDS, name), { "pids.max": String(limits.pids) }],
  ]);
}

/**
 * Makes a build's cgroups, bounded by `limits`: the memory, cpu and pids controllers under cgroup
 * v1 (one folder in each hierarchy), or one folder under v2. crun runs with its cgroup manager off,
 * so RUN steps get there by joining these before crun starts (runContainer's cgroupProcs).
 */
export async function openBuildCgroup(name: string, limits: BuildLimits): Promise<BuildCgroup> {
  const v2 = existsSync(join(ROOT, "cgroup.controllers"));
  const dirs = limitFiles(v2, name, limits);
  if (v2) {
    // A v2 child gets a controller only when its parent hands it down.
    await mkdir(join(ROOT, BUILDS), { recursive: true });
    for (const parent of [ROOT, join(ROOT, BUILDS)]) {
      await writeFile(join(parent, "cgroup.subtree_control"), "+memory +cpu +pids");
    }
  }
  const close = async () => {
    for (const dir of dirs.keys()) await removeCgroup(dir);
  };
  try {
    for (const [dir, files] of dirs) {
      await mkdir(dir, { recursive: true });
      for (const [file, value] of Object.entries(files)) await writeFile(join(dir, file), value);
    }
  } catch (err) {
    await close().catch(() => undefined);
    throw new Error(`could not make the build's cgroups: ${(err as Error).message}`, { cause: err });
  }
  return { procs: [...dirs.keys()].map((d) => join(d, "cgroup.procs")), close };
}

/** A build's cgroup name: unique on the host, as builders of several platforms may share it. */
export function buildCgroupName(builderId: string, buildId: string): string {
  return `${builderId.replace(/[^A-Za-z0-9_.-]/g, "_")}-${buildId}`;
}

/**
 * Removes the cgroups a builder of this host left when it died (a `<host>/<pid>` builder id whose
 * pid is gone): their RUN processes died with it, or were killed by crun's own pid 1 going.
 */
export async function removeLeftCgroups(host: string, alive: (pid: number) => boolean): Promise<void> {
  const prefix = buildCgroupName(`${host}/`, "").slice(0, -1);
  const v2 = existsSync(join(ROOT, "cgroup.controllers"));
  const parents = v2 ? [join(ROOT, BUILDS)] : ["memory", "cpu", "pids"].map((c) => join(ROOT, c, BUILDS));
  for (const parent of parents) {
    for (const name of await readdir(parent).catch(() => [] as string[])) {
      const pid = /^(\d+)-/.exec(name.startsWith(prefix) ? name.slice(prefix.length) : "")?.[1];
      if (pid === undefined || alive(Number(pid))) continue;
      await removeCgroup(join(parent, name)).catch(() => undefined);
    }
  }
}

/** Removes a cgroup once its processes are gone (the kernel lets them go a moment after they exit). */
async function removeCgroup(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      const procs = await readFile(join(dir, "cgroup.procs"), "utf8").catch(() => "");
      if (code !== "EBUSY" || attempt >= 50) {
        throw new Error(`could not remove cgroup ${dir} (processes: ${procs.trim() || "none"})`, {
          cause: err,
        });
      }
      await sleep(100);
    }
  }
}
