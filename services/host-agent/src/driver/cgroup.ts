import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pollUntil } from "./poll.js";

/*
 * A freezer per machine: each machine's whole process tree lives in a cgroup of its own,
 * `<hierarchy>/hangar/<scope>/<machine_id>`, which the kernel freezes and thaws as one. A frozen
 * machine keeps its processes and memory, gets no signal and runs no instruction until thawed, so
 * unlike SIGSTOP the app cannot tell (no SIGCHLD to its parent, no SIGCONT handler, no stopped
 * state for a debugger or a shell to notice). Works with cgroup v1 (the freezer controller,
 * freezer.state) and cgroup v2 (cgroup.freeze, Linux 5.2+). `scope` keeps the machines of
 * different agents (state folders) on one host apart, since machine ids are only unique per agent
 * in tests and local setups.
 */

export type CgroupVersion = 1 | 2;

/** How a driver suspends machines: a cgroup freezer, or SIGSTOP/SIGCONT where there is none. */
export type SuspendMode = "cgroup-v1" | "cgroup-v2" | "signals";

/** Where a run's cgroup is (recorded in run.json, so an agent that takes over finds it). */
export interface CgroupRef {
  version: CgroupVersion;
  path: string;
}

/** One line of /proc/self/mountinfo, the fields the freezer needs. */
export interface MountEntry {
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** The mounted cgroup hierarchy that can freeze. */
export interface CgroupHierarchy {
  version: CgroupVersion;
  mountPoint: string;
}

/** v1 freezer.state: FREEZING until every task is frozen. */
export type FreezerState = "THAWED" | "FREEZING" | "FROZEN";

/** The folder, under a hierarchy's mount point, that holds Hangar's cgroups. */
export const HANGAR_CGROUP = "hangar";
const SCOPE_PREFIX = "agent-";
const DEFAULT_FREEZE_TIMEOUT_MS = 5_000;

/** Mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** Parses /proc/<pid>/mountinfo (see proc(5)): mount point, filesystem type and super options. */
export function parseMountinfo(text: string): MountEntry[] {
  const mounts: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    // Optional fields (shared:N, master:N) sit between field 6 and the "-" separator.
    const sep = fields.indexOf("-", 6);
    const mountPoint = fields[4];
    const fsType = fields[sep + 1];
    if (sep < 0 || mountPoint === undefined || fsType === undefined) continue;
    mounts.push({
      mountPoint: unescapeMountPath(mountPoint),
      fsType,
      superOptions: (fields[sep + 3] ?? "").split(","),
    });
  }
  return mounts;
}

/**
 * The hierarchies that could freeze machines, best first: cgroup v2 (/sys/fs/cgroup before a hybrid
 * host's /sys/fs/cgroup/unified), then the v1 freezer controller. v2 comes first because it thaws
 * faster: measured on a hybrid host, an HTTP server answered a request that waited through a freeze
 * about 3 ms after a v2 thaw and 10 to 20 ms (50 at worst) after a v1 thaw, and waking a suspended
 * machine is on the path of the request that woke it. v2 also lets a frozen task be killed.
 */
export function freezerHierarchies(mounts: readonly MountEntry[]): CgroupHierarchy[] {
  const byMountPoint = (a: MountEntry, b: MountEntry) =>
    Number(b.mountPoint === "/sys/fs/cgroup") - Number(a.mountPoint === "/sys/fs/cgroup");
  const v2 = mounts.filter((m) => m.fsType === "cgroup2").sort(byMountPoint);
  const v1 = mounts.filter((m) => m.fsType === "cgroup" && m.superOptions.includes("freezer"));
  const seen = new Set<string>();
  return [
    ...v2.map((m) => ({ version: 2 as const, mountPoint: m.mountPoint })),
    ...v1.map((m) => ({ version: 1 as const, mountPoint: m.mountPoint })),
  ].filter((h) => !seen.has(h.mountPoint) && seen.add(h.mountPoint));
}

/** Reads v1 freezer.state; null for anything else. */
export function parseFreezerState(text: string): FreezerState | null {
  const state = text.trim();
  return state === "THAWED" || state === "FREEZING" || state === "FROZEN" ? state : null;
}

/** Reads a v2 key-value file such as cgroup.events ("populated 1\nfrozen 0"). */
export function parseFlatKeyed(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) values.set(key, value);
  }
  return values;
}

/** The pids in a cgroup.procs file. */
export function parsePids(text: string): number[] {
  return text
    .split("\n")
    .filter((line) => /^\d+$/.test(line))
    .map(Number);
}

/** The cgroup folder name of an agent's state folder: stable across restarts, apart from other agents'. */
export function cgroupScope(stateDir: string): string {
  return `${SCOPE_PREFIX}${createHash("sha256").update(resolve(stateDir)).digest("hex").slice(0, 16)}`;
}

/** Whether a cgroup file operation failed because the cgroup is gone (removed, or never created). */
/**
 * Removes an emptied cgroup's folder, retrying until `timeoutMs`: the kernel lets it go only a moment
 * after its last task has died. Throws the last error if it never does.
 */
export async function removeCgroupDir(path: string, timeoutMs: number): Promise<void> {
  let lastError: unknown;
  const removed = await pollUntil(() => {
    try {
      rmdirSync(path);
      return true;
    } catch (err) {
      if (isMissing(err)) return true;
      lastError = err;
      return false;
    }
  }, timeoutMs);
  if (!removed) throw lastError;
}

export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENODEV";
}

/** One machine's cgroup. Every method tolerates a cgroup that is gone (removed or never created). */
export class MachineCgroup {
  constructor(
    readonly version: CgroupVersion,
    readonly path: string,
  ) {}

  /** The file a process writes its pid to in order to join (the wrapper does, before it forks the app). */
  get procsFile(): string {
    return join(this.path, "cgroup.procs");
  }

  get ref(): CgroupRef {
    return { version: this.version, path: this.path };
  }

  /** Creates the cgroup (and its parents); left as is when it exists. */
  create(): void {
    mkdirSync(this.path, { recursive: true });
  }

  exists(): boolean {
    return existsSync(this.procsFile);
  }

  /** The processes in the cgroup now. */
  pids(): number[] {
    try {
      return parsePids(readFileSync(this.procsFile, "utf8"));
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
  }

  /** Whether a freeze was asked for (and not undone): the machine is, or is becoming, frozen. */
  isFreezeRequested(): boolean {
    try {
      if (this.version === 1) return this.#readState() !== "THAWED";
      return readFileSync(join(this.path, "cgroup.freeze"), "utf8").trim() === "1";
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  /** Whether every task in the cgroup is frozen now. */
  isFrozen(): boolean {
    if (this.version === 1) return this.#readState() === "FROZEN";
    return parseFlatKeyed(readFileSync(join(this.path, "cgroup.events"), "utf8")).get("frozen") === "1";
  }

  /**
   * Freezes every process in the cgroup and resolves once all are frozen. On timeout (a task stuck in
   * the kernel), thaws the cgroup again and returns false: half a freeze is worse than none.
   */
  async freeze(timeoutMs = DEFAULT_FREEZE_TIMEOUT_MS): Promise<boolean> {
    if (await this.#freezeAndWait(timeoutMs)) return true;
    this.thaw();
    return false;
  }

  /** Lets the processes run again. Returns at once: thawing needs no wait. */
  thaw(): void {
    try {
      this.#requestFreeze(false);
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
  }

  /**
   * SIGKILLs every process in the cgroup, frozen or not, and leaves it thawed, so the tasks die and a
   * later run that joins the cgroup is not frozen. v2 does it in one write (cgroup.kill, Linux 5.14+);
   * otherwise the cgroup is frozen first, so no process can fork a child the kill would miss.
   */
  async killAll(): Promise<void> {
    if (!this.exists()) return;
    if (this.pids().length === 0) {
      if (this.isFreezeRequested()) this.thaw();
      return;
    }
    const killFile = join(this.path, "cgroup.kill");
    if (this.version === 2 && existsSync(killFile)) {
      writeFileSync(killFile, "1");
      this.thaw();
      return;
    }
    // Killed while frozen, a v1 task dies only once thawed, and then without running user code.
    await this.#freezeAndWait(1_000);
    for (const pid of this.pids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
      }
    }
    this.thaw();
  }

  /** Kills what is left in the cgroup and removes it once it is empty (the kernel needs a moment). */
  async remove(timeoutMs = DEFAULT_FREEZE_TIMEOUT_MS): Promise<void> {
    if (!this.exists()) return;
    await this.killAll();
    await removeCgroupDir(this.path, timeoutMs);
  }

  /**
   * v1 can stay FREEZING for good when it catches a task in the middle of a fork (the parent waits in
   * the kernel for a child that was never asked to freeze): asking again freezes the newcomers, so each
   * check that does not find the cgroup frozen asks again, as runc does. v2 needs one request.
   */
  #freezeAndWait(timeoutMs: number): Promise<boolean> {
    this.#requestFreeze(true);
    return pollUntil(() => {
      if (this.isFrozen()) return true;
      if (this.version === 1) this.#requestFreeze(true);
      return false;
    }, timeoutMs);
  }

  #readState(): FreezerState | null {
    return parseFreezerState(readFileSync(join(this.path, "freezer.state"), "utf8"));
  }

  #requestFreeze(frozen: boolean): void {
    if (this.version === 1) writeFileSync(join(this.path, "freezer.state"), frozen ? "FROZEN" : "THAWED");
    else writeFileSync(join(this.path, "cgroup.freeze"), frozen ? "1" : "0");
  }
}

/** The host's freezer, for the machines of one agent (scope). */
export class CgroupFreezer {
  private constructor(
    readonly version: CgroupVersion,
    /** `<hierarchy>/hangar/<scope>`: the parent of this agent's machine cgroups. */
    readonly scopePath: string,
  ) {}

  get mode(): SuspendMode {
    return this.version === 1 ? "cgroup-v1" : "cgroup-v2";
  }

  /**
   * Finds the best cgroup hierarchy that can freeze (of `version` only, when given) and in which
   * Hangar's folder can be made (root, a writable mount). Says why none can otherwise; the driver
   * then suspends with signals. `mountinfo` defaults to /proc/self/mountinfo.
   */
  static detect(
    scope: string,
    options: { version?: CgroupVersion; mountinfo?: string } = {},
  ): { freezer: CgroupFreezer } | { reason: string } {
    let text = options.mountinfo;
    if (text === undefined) {
      try {
        text = readFileSync("/proc/self/mountinfo", "utf8");
      } catch (err) {
        return { reason: `cannot read /proc/self/mountinfo: ${(err as Error).message}` };
      }
    }
    const candidates = freezerHierarchies(parseMountinfo(text)).filter(
      (h) => options.version === undefined || h.version === options.version,
    );
    if (candidates.length === 0) {
      const which =
        options.version === undefined ? "neither cgroup2 nor v1 freezer" : `no cgroup v${options.version}`;
      return { reason: `no cgroup freezer is mounted (${which})` };
    }
    const reasons: string[] = [];
    for (const hierarchy of candidates) {
      const base = join(hierarchy.mountPoint, HANGAR_CGROUP);
      try {
        mkdirSync(base, { recursive: true });
      } catch (err) {
        reasons.push(`cannot create ${base}: ${(err as Error).message} (the agent must run as root)`);
        continue;
      }
      // Missing on kernels without v2 freezing (before Linux 5.2).
      const control = hierarchy.version === 1 ? "freezer.state" : "cgroup.freeze";
      if (!existsSync(join(base, control))) {
        reasons.push(`${base} has no ${control}`);
        continue;
      }
      return { freezer: new CgroupFreezer(hierarchy.version, join(base, scope)) };
    }
    return { reason: reasons.join("; ") };
  }

  /** The cgroup of one machine (not created yet: see MachineCgroup.create). */
  machine(machineId: string): MachineCgroup {
    return new MachineCgroup(this.version, join(this.scopePath, machineId));
  }

  /** The machine cgroups under this scope now. */
  machines(): MachineCgroup[] {
    let names: string[];
    try {
      names = readdirSync(this.scopePath, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
    return names.map((name) => this.machine(name));
  }

  /** Removes every machine cgroup of the scope, killing what still runs in them, then the scope itself. */
  async removeScope(): Promise<void> {
    for (const cgroup of this.machines()) await cgroup.remove();
    try {
      rmdirSync(this.scopePath);
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
  }
}
