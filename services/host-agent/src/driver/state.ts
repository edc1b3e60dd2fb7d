import { randomBytes } from "node:crypto";
import { type Dirent, renameSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { CgroupRef } from "./cgroup.js";
import type { LimitsRef } from "./cgroup-limits.js";
import type { ExitInfo, LogStream, MachineRunSpec } from "./types.js";

/** run.json: one run of a machine. pid and startTime are null between "about to spawn" and "spawned". */
export interface RunRecord {
  /** Tells this run from earlier and later runs of the same machine. */
  runId: string;
  spec: MachineRunSpec;
  privateIp: string;
  /** The 6PN address, "" without one; absent in records of older agents (none). */
  privateIpv6?: string;
  port: number;
  pid: number | null;
  startTime: number | null;
  /** The cgroup the run's processes are in; absent or null when it runs without one (SIGSTOP suspends). */
  cgroup?: CgroupRef | null;
  /** The run's limit cgroups; absent or null when it runs without limits. */
  limits?: LimitsRef | null;
}

/** stop.json: what the driver did to a run, so an agent that takes over knows it too. */
export interface ControlRecord {
  runId: string;
  /** A stop or destroy asked for the exit. */
  requested: boolean;
  /** The driver sent SIGKILL to the group, which kills the wrapper before it can record the exit. */
  killed: boolean;
  /**
   * The signals the driver sent the app (names). crun and the machine's init report a death by signal
   * n as exit status 128+n, like a shell: such a status is a death by signal only when n was sent.
   */
  sent?: string[];
}

/** reported.json: the run's exit has been handed to the agent, so a later agent does not report it again. */
export interface ReportedRecord {
  runId: string;
  exit: ExitInfo;
}

const MACHINE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Whether `id` can name a machine folder (also keeps ids from escaping the state folder). */
export function isValidMachineId(id: string): boolean {
  return MACHINE_ID.test(id);
}

/** The folders of machines under the state folder. */
export async function listMachineIds(stateDir: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(stateDir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return entries.filter((e) => e.isDirectory() && isValidMachineId(e.name)).map((e) => e.name);
}

/** Writes JSON so that readers see the old file or the new one, never a part (tmp + rename). */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString("hex")}.tmp`;
  // Synchronously: a small file, written on a start's path, where each threadpool round trip waits
  // behind the event loop of a busy agent.
  try {
    writeFileSync(tmp, `${JSON.stringify(value)}\n`, { mode: 0o600 });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch {
    return null;
  }
}

/** `<stateDir>/<machine_id>/`: the files of one machine. */
export class MachineDir {
  readonly path: string;

  constructor(
    stateDir: string,
    readonly machineId: string,
  ) {
    this.path = join(stateDir, machineId);
  }

  get exitFile(): string {
    return join(this.path, "exit");
  }

  logFile(stream: LogStream): string {
    return join(this.path, `${stream}.log`);
  }

  /** Creates the folder (private: run.json holds the env) and clears what a previous run left. */
  async prepareRun(): Promise<void> {
    await mkdir(this.path, { recursive: true, mode: 0o700 });
    await Promise.all(
      ["exit", "exit.tmp", "stop.json", "reported.json"].map((f) => rm(join(this.path, f), { force: true })),
    );
  }

  readRun(): Promise<RunRecord | null> {
    return readJson(join(this.path, "run.json"));
  }

  writeRun(record: RunRecord): Promise<void> {
    return writeJsonAtomic(join(this.path, "run.json"), record);
  }

  /** The control record of run `runId`, ignoring one left by an earlier run. */
  async readControl(runId: string): Promise<ControlRecord | null> {
    const record = await readJson<ControlRecord>(join(this.path, "stop.json"));
    return record?.runId === runId ? record : null;
  }

  writeControl(record: ControlRecord): Promise<void> {
    return writeJsonAtomic(join(this.path, "stop.json"), record);
  }

  /** Whether run `runId`'s exit was already reported. */
  async isReported(runId: string): Promise<boolean> {
    const record = await readJson<ReportedRecord>(join(this.path, "reported.json"));
    return record?.runId === runId;
  }

  writeReported(record: ReportedRecord): Promise<void> {
    return writeJsonAtomic(join(this.path, "reported.json"), record);
  }

  remove(): Promise<void> {
    return rm(this.path, { recursive: true, force: true });
  }
}
