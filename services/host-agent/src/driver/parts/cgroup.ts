import type { Logger } from "@hangar/telemetry";
import { CgroupFreezer, type CgroupRef, cgroupScope, MachineCgroup, type SuspendMode } from "../cgroup.js";
import { CgroupLimits, DEFAULT_GUEST, type LimitsRef, MachineLimits } from "../cgroup-limits.js";
import type { MachinePart, MachineTeardown, RunSetup } from "./part.js";

/** How a driver suspends machines, and why it does not use a freezer when it does not. */
export interface SuspendInfo {
  mode: SuspendMode;
  reason?: string;
}

/**
 * The machine's own cgroups. Where the host has a freezer the driver may use, all of a run's processes
 * live in its freezer cgroup, so suspend freezes them as one and the end of a run kills what escaped
 * its process group. Where the host has the cpu, memory and pids controllers (v2, else v1), they live
 * in limit cgroups too, which hold the machine to its guest size (cgroup-limits.ts).
 */
export class CgroupPart implements MachinePart {
  readonly name = "cgroup";
  /** Detected on first use: the host's freezer for this driver's machines, or why there is none. */
  #freezer: { freezer: CgroupFreezer | null; info: SuspendInfo } | null = null;
  /** Detected on first use: the host's limit hierarchies, or null when machines run without limits. */
  #limits: { limits: CgroupLimits | null } | null = null;

  /**
   * `suspend`: "auto" uses the best freezer the host has (v2 before v1), "signals" none, a version
   * only that one (and none when the host lacks it).
   */
  constructor(
    private readonly stateDir: string,
    private readonly suspend: "auto" | SuspendMode,
    private readonly logger: Pick<Logger, "warn">,
  ) {}

  /** How machines started now are suspended: a cgroup freezer (v1 or v2) or signals, and why. */
  suspendInfo(): SuspendInfo {
    return this.#detect().info;
  }

  async prepare(run: RunSetup): Promise<void> {
    const cgroup = this.#detect().freezer?.machine(run.spec.machineId) ?? null;
    if (cgroup) {
      cgroup.create();
      // What an earlier run left behind (a process that escaped its group) goes, and a cgroup left
      // frozen would freeze this run the moment it joins.
      await cgroup.killAll();
      run.cgroup = cgroup;
    }
    const limits = this.#limitsOf(run.spec.machineId);
    if (limits) {
      limits.create();
      // Without a freezer nothing has cleared them: a leftover process would count against this run.
      await limits.killAll();
      limits.apply(run.spec.guest ?? DEFAULT_GUEST);
      run.limits = limits.startRun();
    }
  }

  /** The cgroup a run recorded, if it still exists (an adopted run keeps the one it started in). */
  recorded(ref: CgroupRef | null | undefined): MachineCgroup | null {
    const cgroup = ref ? new MachineCgroup(ref.version, ref.path) : null;
    return cgroup?.exists() ? cgroup : null;
  }

  /** The limits a run recorded, if they still exist (the run's OOM kills are counted in them). */
  recordedLimits(ref: LimitsRef | null | undefined): MachineLimits | null {
    const limits = ref ? MachineLimits.fromRef(ref) : null;
    return limits?.exists() ? limits : null;
  }

  /** Removes the machine's cgroups: its last run's and the ones a new run would get. */
  async release({ machineId, lastRun }: MachineTeardown): Promise<void> {
    const refs = new Map<string, CgroupRef>();
    if (lastRun?.cgroup) refs.set(lastRun.cgroup.path, lastRun.cgroup);
    const current = this.#detect().freezer?.machine(machineId).ref;
    if (current) refs.set(current.path, current);
    for (const ref of refs.values()) {
      await new MachineCgroup(ref.version, ref.path).remove().catch((err: unknown) => {
        this.logger.warn({ err, machineId, cgroup: ref.path }, "could not remove the machine's cgroup");
      });
    }
    const limits = [
      lastRun?.limits ? MachineLimits.fromRef(lastRun.limits) : null,
      this.#limitsOf(machineId),
    ];
    for (const l of limits) {
      await l?.remove().catch((err: unknown) => {
        this.logger.warn({ err, machineId }, "could not remove the machine's limit cgroups");
      });
    }
  }

  /** The limit cgroups a run of the machine gets; null when the host cannot limit (warned once). */
  #limitsOf(machineId: string): MachineLimits | null {
    if (!this.#limits) {
      const found = CgroupLimits.detect();
      if ("reason" in found)
        this.logger.warn({ reason: found.reason }, "machines run without cpu, memory and pids limits");
      this.#limits = { limits: "limits" in found ? found.limits : null };
    }
    return this.#limits.limits?.machine(cgroupScope(this.stateDir), machineId) ?? null;
  }

  #detect(): { freezer: CgroupFreezer | null; info: SuspendInfo } {
    if (this.#freezer) return this.#freezer;
    if (this.suspend === "signals") {
      this.#freezer = {
        freezer: null,
        info: { mode: "signals", reason: "the driver was told to use signals" },
      };
      return this.#freezer;
    }
    const found = CgroupFreezer.detect(
      cgroupScope(this.stateDir),
      this.suspend === "auto" ? {} : { version: this.suspend === "cgroup-v1" ? 1 : 2 },
    );
    this.#freezer =
      "freezer" in found
        ? { freezer: found.freezer, info: { mode: found.freezer.mode } }
        : { freezer: null, info: { mode: "signals", reason: found.reason } };
    return this.#freezer;
  }
}
