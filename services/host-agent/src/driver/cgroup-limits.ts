import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type CgroupVersion,
  HANGAR_CGROUP,
  isMissing,
  type MountEntry,
  parseFlatKeyed,
  parseMountinfo,
  parsePids,
  removeCgroupDir,
} from "./cgroup.js";
import { pollUntil } from "./poll.js";
import type { GuestSize } from "./types.js";

/*
 * A machine's resource limits, from its guest size, in cgroups of its own: `<hierarchy>/hangar/<scope>/
 * <machine_id>` in each hierarchy that holds one of the controllers (cpu, memory, pids). A controller
 * comes from cgroup v2 where the unified hierarchy offers it, else from its v1 hierarchy: a v1/v2
 * hybrid host whose unified tree has no controllers (this project's CI) gets one cgroup per v1
 * hierarchy, a v2 host one cgroup for all three (the one its freezer uses too). The wrapper joins
 * every one of them before it forks the app (see wrapper.ts), so the limits hold from the app's first
 * instruction and for everything it forks.
 *
 * What a guest gets (docs/architecture.md, "Resource limits"):
 * - CPU: a quota of `cpus` x the period (100 ms), so a machine never uses more than its vCPUs. Fly's
 *   shared vCPU is guaranteed 1/16 of a core and bursts up to a whole one; a performance vCPU is a
 *   whole core. Both get the same quota (a shared vCPU may burst to a core); the weight under
 *   contention is what differs: a shared vCPU weighs 1/16 of a performance vCPU.
 * - Memory: `memory_mb` MiB of RAM and, as fly.toml's `swap_size_mb` (the config's
 *   init.swap_size_mb) asks, that much of the host's swap, else none (v2 memory.swap.max; v1
 *   memory+swap = memory + swap, or, where the host has no swap accounting, swappiness 0 for none
 *   and the host's own swappiness for some). A Fly machine gets a swap file of that size in its VM;
 *   a Hangar machine gets the host's swap up to it, so a host without swap has none to give.
 * - Pids: 4 per MiB of memory, at least 1024 and at most 32768 (a guest kernel's default pid_max):
 *   a fork bomb hits the cap long before the host's pid space, and a machine's memory is what bounds
 *   how many processes it can use anyway.
 */

/** The controllers a machine's limits use. */
export type LimitController = "cpu" | "memory" | "pids";

const CONTROLLERS: readonly LimitController[] = ["cpu", "memory", "pids"];

/** Fly's default guest: shared-cpu-1x. */
export const DEFAULT_GUEST: GuestSize = { cpus: 1, cpuKind: "shared", memoryMb: 256 };

/** The CFS period: 100 ms, the kernel's default. */
export const CPU_PERIOD_US = 100_000;
/** How many shared vCPUs weigh as much as one performance vCPU: Fly guarantees a shared one 1/16 of a core. */
export const SHARED_CPU_FRACTION = 16;
const PIDS_PER_MB = 4;
const MIN_PIDS = 1024;
const MAX_PIDS = 32_768;
/** v2 cpu.weight and v1 cpu.shares of one performance vCPU: the kernel's default for one task group. */
const WEIGHT_PER_CPU = 100;
const SHARES_PER_CPU = 1024;

/** The values a guest's cgroups get. */
export interface GuestLimits {
  cpuQuotaUs: number;
  cpuPeriodUs: number;
  /** v2 cpu.weight (1 to 10000). */
  cpuWeight: number;
  /** v1 cpu.shares (at least 2). */
  cpuShares: number;
  memoryBytes: number;
  /** Swap besides memory (0: none). */
  swapBytes: number;
  pidsMax: number;
}

/** The cgroup values of a guest size (see the comment at the top of this file). */
export function guestLimits(guest: GuestSize): GuestLimits {
  const fraction = guest.cpuKind === "performance" ? 1 : 1 / SHARED_CPU_FRACTION;
  return {
    cpuQuotaUs: guest.cpus * CPU_PERIOD_US,
    cpuPeriodUs: CPU_PERIOD_US,
    cpuWeight: Math.min(10_000, Math.max(1, Math.round(guest.cpus * WEIGHT_PER_CPU * fraction))),
    cpuShares: Math.max(2, Math.round(guest.cpus * SHARES_PER_CPU * fraction)),
    memoryBytes: guest.memoryMb * 1024 * 1024,
    swapBytes: Math.max(0, guest.swapMb ?? 0) * 1024 * 1024,
    pidsMax: Math.min(MAX_PIDS, Math.max(MIN_PIDS, guest.memoryMb * PIDS_PER_MB)),
  };
}

/** One cgroup of a machine's limits and the controllers it holds. */
export interface LimitCgroupRef {
  version: CgroupVersion;
  path: string;
  controllers: LimitController[];
}

/** Where a run's limits are (recorded in run.json), and the OOM kills counted before the run began. */
export interface LimitsRef {
  cgroups: LimitCgroupRef[];
  oomKillsAtStart: number;
}

/** A hierarchy that holds some of the limit controllers. */
export interface LimitHierarchy {
  version: CgroupVersion;
  mountPoint: string;
  controllers: LimitController[];
}

/**
 * Where each limit controller is: a cgroup2 mount (/sys/fs/cgroup first) whose root offers it
 * (`v2Controllers(mountPoint)`, its cgroup.controllers), else a v1 mount of that controller.
 * Controllers found nowhere are left out. Mount points with ':' are skipped: the wrapper gets its
 * cgroup.procs files as a ':'-separated list.
 */
export function limitHierarchies(
  mounts: readonly MountEntry[],
  v2Controllers: (mountPoint: string) => string[],
): LimitHierarchy[] {
  const usable = mounts.filter((m) => !m.mountPoint.includes(":"));
  const v2 = usable
    .filter((m) => m.fsType === "cgroup2")
    .sort((a, b) => Number(b.mountPoint === "/sys/fs/cgroup") - Number(a.mountPoint === "/sys/fs/cgroup"));
  const byMount = new Map<string, LimitHierarchy>();
  for (const controller of CONTROLLERS) {
    const unified = v2.find((m) => v2Controllers(m.mountPoint).includes(controller));
    const mount = unified ?? usable.find((m) => m.fsType === "cgroup" && m.superOptions.includes(controller));
    if (!mount) continue;
    const known = byMount.get(mount.mountPoint);
    if (known) known.controllers.push(controller);
    else
      byMount.set(mount.mountPoint, {
        version: unified ? 2 : 1,
        mountPoint: mount.mountPoint,
        controllers: [controller],
      });
  }
  return [...byMount.values()];
}

function readControllers(dir: string): string[] {
  try {
    return readFileSync(join(dir, "cgroup.controllers"), "utf8").trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

/** Writes a control file, naming it in the error (the kernel's EINVAL alone says nothing). */
function writeControl(dir: string, file: string, value: string | number): void {
  try {
    writeFileSync(join(dir, file), String(value));
  } catch (err) {
    throw new Error(`cannot write ${value} to ${join(dir, file)}: ${(err as Error).message}`, { cause: err });
  }
}

function killPids(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
  }
}

/** What the pids controller saw: processes now, the cap, and forks it refused (v1 and v2 pids.events "max"). */
export interface PidsUsage {
  current: number;
  max: number;
  refusedForks: number;
}

/** One machine's limit cgroups. Every method but `apply` tolerates cgroups that are gone. */
export class MachineLimits {
  constructor(
    readonly cgroups: readonly LimitCgroupRef[],
    /** The memory cgroup's OOM kill count when this run began (the cgroup outlives runs). */
    readonly oomKillsAtStart = 0,
  ) {}

  /** The limits a run recorded. */
  static fromRef(ref: LimitsRef): MachineLimits {
    return new MachineLimits(ref.cgroups, ref.oomKillsAtStart);
  }

  get ref(): LimitsRef {
    return { cgroups: this.cgroups.map((c) => ({ ...c })), oomKillsAtStart: this.oomKillsAtStart };
  }

  /** The cgroup.procs files the wrapper joins. */
  get procsFiles(): string[] {
    return this.cgroups.map((c) => join(c.path, "cgroup.procs"));
  }

  exists(): boolean {
    return this.cgroups.some((c) => existsSync(join(c.path, "cgroup.procs")));
  }

  /** Creates the cgroups (and their parents); on v2, enables the controllers down to the machine's cgroup. */
  create(): void {
    for (const c of this.cgroups) {
      if (c.version === 2) enableDownTo(c.path, c.controllers);
      mkdirSync(c.path, { recursive: true });
    }
  }

  /** Writes the guest's limits into the cgroups (again on every run: an update may change the guest). */
  apply(guest: GuestSize): void {
    const limits = guestLimits(guest);
    for (const c of this.cgroups) {
      for (const controller of c.controllers) {
        if (c.version === 2) applyV2(c.path, controller, limits);
        else applyV1(c.path, controller, limits);
      }
    }
  }

  /** The same limits, counting OOM kills from now on (a run's start). */
  startRun(): MachineLimits {
    return new MachineLimits(this.cgroups, this.oomKills());
  }

  /** How many processes the OOM killer has killed in the memory cgroup since it was made. */
  oomKills(): number {
    const memory = this.#cgroupOf("memory");
    if (!memory) return 0;
    const file = memory.version === 2 ? "memory.events" : "memory.oom_control";
    try {
      return Number(parseFlatKeyed(readFileSync(join(memory.path, file), "utf8")).get("oom_kill") ?? 0);
    } catch (err) {
      if (isMissing(err)) return 0;
      throw err;
    }
  }

  /** Whether the OOM killer killed a process of the machine since this run began. */
  oomKilledSinceStart(): boolean {
    return this.oomKills() > this.oomKillsAtStart;
  }

  /** The pids controller's view, null when the machine has no pids cgroup. */
  pidsUsage(): PidsUsage | null {
    const pids = this.#cgroupOf("pids");
    if (!pids) return null;
    const read = (file: string) => readFileSync(join(pids.path, file), "utf8").trim();
    const max = read("pids.max");
    return {
      current: Number(read("pids.current")),
      max: max === "max" ? Number.POSITIVE_INFINITY : Number(max),
      refusedForks: Number(parseFlatKeyed(read("pids.events")).get("max") ?? 0),
    };
  }

  /** SIGKILLs what is in the cgroups until they are empty (a process that forks is caught next round). */
  async killAll(timeoutMs = 5_000): Promise<boolean> {
    return pollUntil(() => {
      const pids = this.#pids();
      killPids(pids);
      return pids.length === 0;
    }, timeoutMs);
  }

  /** Kills what is left and removes the cgroups. */
  async remove(timeoutMs = 5_000): Promise<void> {
    if (!this.exists()) return;
    await this.killAll(timeoutMs);
    for (const c of this.cgroups) await removeCgroupDir(c.path, timeoutMs);
  }

  #cgroupOf(controller: LimitController): LimitCgroupRef | undefined {
    return this.cgroups.find((c) => c.controllers.includes(controller));
  }

  #pids(): number[] {
    const pids = new Set<number>();
    for (const file of this.procsFiles) {
      try {
        for (const pid of parsePids(readFileSync(file, "utf8"))) pids.add(pid);
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
    return [...pids];
  }
}

/**
 * v2 gives a cgroup a controller only when every ancestor lists it in cgroup.subtree_control: enables
 * them from the hierarchy's `hangar` folder's parent down to the machine's parent (a no-op where
 * they are enabled already).
 */
function enableDownTo(machinePath: string, controllers: readonly LimitController[]): void {
  const marker = `/${HANGAR_CGROUP}/`;
  const at = machinePath.lastIndexOf(marker);
  if (at < 0) throw new Error(`${machinePath} is not under a ${HANGAR_CGROUP} folder`);
  const mountPoint = machinePath.slice(0, at);
  const parts = machinePath.slice(at + 1).split("/");
  const enable = controllers.map((c) => `+${c}`).join(" ");
  let dir = mountPoint;
  for (const part of parts.slice(0, -1)) {
    writeControl(dir, "cgroup.subtree_control", enable);
    dir = join(dir, part);
    mkdirSync(dir, { recursive: true });
  }
  writeControl(dir, "cgroup.subtree_control", enable);
}

function applyV2(path: string, controller: LimitController, limits: GuestLimits): void {
  switch (controller) {
    case "cpu":
      writeControl(path, "cpu.max", `${limits.cpuQuotaUs} ${limits.cpuPeriodUs}`);
      writeControl(path, "cpu.weight", limits.cpuWeight);
      return;
    case "memory":
      writeControl(path, "memory.max", limits.memoryBytes);
      // Absent without swap accounting (swapaccount=0): there is no swap to take from the cgroup then.
      if (existsSync(join(path, "memory.swap.max"))) writeControl(path, "memory.swap.max", limits.swapBytes);
      return;
    case "pids":
      writeControl(path, "pids.max", limits.pidsMax);
      return;
  }
}

/** The host's vm.swappiness (the kernel's default, 60, if it cannot be read). */
function hostSwappiness(): number {
  try {
    const n = Number(readFileSync("/proc/sys/vm/swappiness", "utf8").trim());
    return Number.isInteger(n) && n >= 0 && n <= 200 ? n : 60;
  } catch {
    return 60;
  }
}

function applyV1(path: string, controller: LimitController, limits: GuestLimits): void {
  switch (controller) {
    case "cpu":
      writeControl(path, "cpu.cfs_period_us", limits.cpuPeriodUs);
      writeControl(path, "cpu.cfs_quota_us", limits.cpuQuotaUs);
      writeControl(path, "cpu.shares", limits.cpuShares);
      return;
    case "memory":
      if (existsSync(join(path, "memory.memsw.limit_in_bytes"))) {
        // memory+swap may never be below memory: lifted first, so a larger guest than last run's fits.
        writeControl(path, "memory.memsw.limit_in_bytes", -1);
        writeControl(path, "memory.limit_in_bytes", limits.memoryBytes);
        writeControl(path, "memory.memsw.limit_in_bytes", limits.memoryBytes + limits.swapBytes);
      } else {
        // Without swap accounting the cgroup cannot cap swap; it can only be told to use none or some.
        writeControl(path, "memory.limit_in_bytes", limits.memoryBytes);
        writeControl(path, "memory.swappiness", limits.swapBytes > 0 ? hostSwappiness() : 0);
      }
      return;
    case "pids":
      writeControl(path, "pids.max", limits.pidsMax);
      return;
  }
}

/** The host's limit hierarchies, for the machines of one agent (scope). */
export class CgroupLimits {
  private constructor(readonly hierarchies: readonly LimitHierarchy[]) {}

  /**
   * Finds where each limit controller is and checks that Hangar's folder can be made there (root, a
   * writable mount). Says why not otherwise: machines then run without limits, and the agent warns.
   * `mountinfo` defaults to /proc/self/mountinfo.
   */
  static detect(options: { mountinfo?: string } = {}): { limits: CgroupLimits } | { reason: string } {
    let text = options.mountinfo;
    if (text === undefined) {
      try {
        text = readFileSync("/proc/self/mountinfo", "utf8");
      } catch (err) {
        return { reason: `cannot read /proc/self/mountinfo: ${(err as Error).message}` };
      }
    }
    const hierarchies = limitHierarchies(parseMountinfo(text), readControllers);
    const missing = CONTROLLERS.filter((c) => !hierarchies.some((h) => h.controllers.includes(c)));
    if (missing.length > 0) return { reason: `no cgroup hierarchy has the ${missing.join(", ")} controller` };
    for (const h of hierarchies) {
      const base = join(h.mountPoint, HANGAR_CGROUP);
      try {
        mkdirSync(base, { recursive: true });
      } catch (err) {
        return { reason: `cannot create ${base}: ${(err as Error).message} (the agent must run as root)` };
      }
    }
    return { limits: new CgroupLimits(hierarchies) };
  }

  /** The limit cgroups of one machine of agent `scope` (not created yet: see MachineLimits.create). */
  machine(scope: string, machineId: string): MachineLimits {
    return new MachineLimits(
      this.hierarchies.map((h) => ({
        version: h.version,
        path: join(this.#scopePath(h, scope), machineId),
        controllers: [...h.controllers],
      })),
    );
  }

  /** Removes the limit cgroups of every machine of agent `scope`, killing what still runs in them, then the scope. */
  async removeScope(scope: string): Promise<void> {
    const machineIds = new Set<string>();
    for (const h of this.hierarchies) {
      try {
        for (const e of readdirSync(this.#scopePath(h, scope), { withFileTypes: true }))
          if (e.isDirectory()) machineIds.add(e.name);
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
    for (const id of machineIds) await this.machine(scope, id).remove();
    for (const h of this.hierarchies) {
      try {
        rmdirSync(this.#scopePath(h, scope));
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
  }

  #scopePath(h: LimitHierarchy, scope: string): string {
    return join(h.mountPoint, HANGAR_CGROUP, scope);
  }
}
