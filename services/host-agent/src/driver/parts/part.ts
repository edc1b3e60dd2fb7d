import type { IdRange, RuntimeBind } from "@hangar/oci";
import type { MachineCgroup } from "../cgroup.js";
import type { MachineLimits } from "../cgroup-limits.js";
import type { MachineDir, RunRecord } from "../state.js";
import type { MachineRunSpec } from "../types.js";
import type { RunOutput } from "./output.js";

/**
 * One run of a machine as launch sets it up: each part fills in what it provides, in the order the
 * parts are wired (an address before the namespace that uses it).
 */
export interface RunSetup {
  readonly spec: MachineRunSpec;
  readonly dir: MachineDir;
  /** Set by the address part. */
  privateIp: string;
  /** Set by the address part: the machine's 6PN address, "" when it has none. */
  privateIpv6: string;
  port: number;
  /** Set by the cgroup part; null when the host has no freezer the driver may use (suspend uses signals). */
  cgroup: MachineCgroup | null;
  /** Set by the cgroup part; null when the host has no cgroup controllers the driver may use. */
  limits: MachineLimits | null;
  /** Set by the rootfs part: where the machine's root filesystem is (an image's overlay, a dir: machine's host view). */
  rootfs: string | null;
  /** Set by the rootfs part: the host id range the machine's user namespace maps to (its org's). */
  range: IdRange | null;
  /**
   * Set by the rootfs part: the ids the machine's process runs as inside it (the image's USER
   * resolved in its root filesystem, once per run; root when it sets none and for a dir: machine).
   */
  user: { uid: number; gid: number } | null;
  /** Set by the output part: the tails of this run's stdout and stderr. */
  output: RunOutput | null;
  /** Host folders bound into the sandbox besides its own files: set by the volumes part. */
  binds: RuntimeBind[];
}

/** A machine being destroyed, after its last run has ended. */
export interface MachineTeardown {
  readonly machineId: string;
  readonly dir: MachineDir;
  /** The last run's record, if it got as far as writing one. */
  readonly lastRun: RunRecord | null;
}

/**
 * One resource a machine gets from its host (as a nomad allocrunner hook). `prepare` sets it up for a
 * run, or checks that what an earlier run set up is still there (resources outlive runs and the
 * agent: a machine keeps its address, namespace and root filesystem across stops). `release` gives
 * back whatever any run of the machine set up; it runs at destroy, in the reverse order of
 * `prepare`, and must not fail when there is nothing to release.
 */
export interface MachinePart {
  /** Names the resource in errors: "could not prepare its <name>". */
  readonly name: string;
  prepare(run: RunSetup): Promise<void>;
  release(machine: MachineTeardown): Promise<void>;
}
