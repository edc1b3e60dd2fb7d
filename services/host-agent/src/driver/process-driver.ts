import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, openSync, readFileSync } from "node:fs";
import {
  type CrunExecProcess,
  containerInit,
  crunExec,
  deleteContainer,
  type ExecSpawnRequest,
  type IdRange,
  prepareCrunHost,
  removeBundle,
  resolveUser,
  spawnCrunExec,
  untilCreated,
} from "@hangar/oci";
import type { ProcessStat } from "@hangar/service";
import { createLogger, type Logger } from "@hangar/telemetry";
import type { HostNetwork } from "../network/host-network.js";
import type { VolumeDisks } from "../volumes/disk.js";
import type { CgroupRef, MachineCgroup, SuspendMode } from "./cgroup.js";
import type { MachineLimits } from "./cgroup-limits.js";
import {
  DriverClosedError,
  InvalidMachineSpecError,
  MachineAlreadyRunningError,
  MachineBusyError,
  MachineNotRunningError,
  MachineStartError,
  MachineSuspendError,
} from "./errors.js";
import { type LogEntry, recentLogs } from "./machine-log.js";
import {
  type MachinePart,
  type MachineParts,
  machineParts,
  type RunOutput,
  type RunSetup,
  STREAMS,
  type SuspendInfo,
} from "./parts/mod.js";
import { pollUntil } from "./poll.js";
import { isSameLiveProcess, listPids, readProcStat } from "./proc.js";
import { machinePids, machineProcesses } from "./ps.js";
import { rootfsPaths } from "./rootfs.js";
import { containerIdOf, sandboxCommand } from "./sandbox.js";
import { parseSignal, signalName, signalNumber } from "./signals.js";
import { validateRunSpec } from "./spec.js";
import { type ControlRecord, isValidMachineId, listMachineIds, MachineDir, type RunRecord } from "./state.js";
import type { ExitInfo, MachineRunSpec, RunningMachine } from "./types.js";
import {
  CGROUP_ENV,
  decodeWaitStatus,
  findWrapper,
  machineWrapper,
  OOM_SCORE_ADJ_ENV,
  readExitStatus,
  untilForked,
  wrapperArgs,
} from "./wrapper.js";

export interface ProcessDriverOptions {
  /** Per-machine state lives in `<stateDir>/<machine_id>/`. */
  stateDir: string;
  /**
   * The address a new port is checked free on. The default, 0.0.0.0, finds ports free on every address,
   * which is what an app binding 0.0.0.0:$PORT needs.
   */
  hostIp?: string;
  /** How often adopted machines (not our children) are checked for an exit; default 200 ms. */
  pollIntervalMs?: number;
  /**
   * "auto" (the default) suspends with a cgroup freezer when the host has one and the agent may use it
   * (root), v2 before v1, else with SIGSTOP/SIGCONT; "signals" always uses signals; "cgroup-v1" or
   * "cgroup-v2" uses that freezer only, and signals when the host does not have it.
   */
  suspend?: "auto" | SuspendMode;
  /** How long a suspend waits for every process to be frozen (or stopped); default 5000 ms. */
  suspendTimeoutMs?: number;
  /** The bound of each machine's kept output file (one older file stays) and raw output files; default 1 MiB. */
  logBytes?: number;
  logger?: Pick<Logger, "warn" | "debug">;
  /**
   * false runs machines without the hardening (no user namespace, every capability, no seccomp): only
   * for `pnpm bench machines`, which measures what the hardening costs. Default true.
   */
  hardening?: boolean;
  /** The host's network for machines in namespaces (6PN, firewall); without it they join the agent's own namespace, IPv4 only. */
  network?: HostNetwork;
  /** The host's volume disks machines mount; without them, a machine with volumes cannot start. */
  volumes?: VolumeDisks;
}

export interface StopOptions {
  /** Sent to the machine's process group first; default SIGTERM. */
  signal?: string;
  /** How long to wait for the exit before SIGKILL; default 5000. */
  timeoutMs?: number;
}

export type { SuspendInfo };
export type ExitListener = (machineId: string, exit: ExitInfo) => void;
/** Gets each line a machine prints, as the host keeps it (with its time and number). */
export type LogListener = (machineId: string, entry: LogEntry) => void;

/** What an agent finds at start: machines still running (now adopted) and runs that ended while it was away. */
export interface AdoptResult {
  running: RunningMachine[];
  exited: Array<{ machineId: string; exit: ExitInfo }>;
}

const DEFAULT_STOP_TIMEOUT_MS = 5_000;
const DEFAULT_POLL_MS = 200;
const DEFAULT_SUSPEND_TIMEOUT_MS = 5_000;
/** Log tails are woken by inotify; every this many polls they are also read, in case an event was missed. */
const TAIL_FALLBACK_POLLS = 5;
const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin";
/** What exec keeps of each of stdout and stderr. */
const DEFAULT_EXEC_BYTES = 1024 * 1024;
/** How long a start waits for crun to take the bundle before removing it anyway. */
const BUNDLE_WAIT_MS = 10_000;

interface Tracked {
  readonly dir: MachineDir;
  readonly runId: string;
  readonly machine: RunningMachine;
  readonly output: RunOutput;
  /** Runs under crun, which passes signals on to the app (see signalSandboxed). */
  readonly sandboxed: boolean;
  /** The run's own cgroup, which the freezer freezes; null when it is suspended with signals. */
  readonly cgroup: MachineCgroup | null;
  /** The run's limit cgroups, whose OOM kill count tells an OOM kill; null when it runs without. */
  readonly limits: MachineLimits | null;
  /** Frozen (or stopped) by suspend and not resumed since: a stop discards it. */
  suspended: boolean;
  /** Our child when this driver started the run; null for an adopted run. */
  child: ChildProcess | null;
  detachChild: () => void;
  /** The wrapper's own death by signal, as its parent saw it. */
  childSignal: NodeJS.Signals | null;
  control: ControlRecord;
  /** Serializes writes of stop.json so the last one on disk is the latest state. */
  controlWrite: Promise<void>;
  finishing: boolean;
  waiters: Array<{ resolve: (exit: ExitInfo) => void; reject: (err: Error) => void }>;
}

/**
 * Runs machines as local processes that outlive the agent. Each machine runs in its own process group
 * under a wrapper that records its exit status; the state folder tells a restarted agent what runs
 * (adopt) and what ended while it was away. A spec with `sandbox` (an OCI image) runs the same way,
 * with bubblewrap between the wrapper and the app: on an overlay root filesystem kept in the machine's
 * folder, and in a network namespace of its own when the spec asks for one. Where the host has a
 * cgroup freezer, each machine's processes also live in a cgroup of their own, which suspend freezes.
 * Each resource a machine gets is a part (see parts/mod.ts): launch prepares them in order, destroy
 * releases them in reverse.
 */
export class ProcessDriver {
  readonly #stateDir: string;
  readonly #hardened: boolean;
  readonly #pollMs: number;
  readonly #suspendTimeoutMs: number;
  readonly #parts: MachineParts;
  readonly #logger: Pick<Logger, "warn" | "debug">;
  readonly #machines = new Map<string, Tracked>();
  /** Machines a start, adoption or destroy is working on. */
  readonly #busy = new Set<string>();
  readonly #exitListeners = new Set<ExitListener>();
  readonly #logListeners = new Set<LogListener>();
  #timer: NodeJS.Timeout | null = null;
  #runtime: Promise<{ ok: true } | { ok: false; reason: string }> | null = null;
  #polls = 0;
  #closed = false;

  constructor(options: ProcessDriverOptions) {
    this.#stateDir = options.stateDir;
    this.#hardened = options.hardening ?? true;
    this.#pollMs = options.pollIntervalMs ?? DEFAULT_POLL_MS;
    this.#suspendTimeoutMs = options.suspendTimeoutMs ?? DEFAULT_SUSPEND_TIMEOUT_MS;
    this.#logger = options.logger ?? createLogger("host-agent").child({ component: "process-driver" });
    this.#parts = machineParts({
      stateDir: options.stateDir,
      hostIp: options.hostIp ?? "0.0.0.0",
      suspend: options.suspend ?? "auto",
      logger: this.#logger,
      holdsPort: (id) => this.#machines.has(id) || this.#busy.has(id),
      sink: (machineId, entry) => this.#emitLog(machineId, entry),
      ...(options.logBytes !== undefined ? { logBytes: options.logBytes } : {}),
      ...(options.network ? { network: options.network } : {}),
      ...(options.volumes ? { volumes: options.volumes } : {}),
    });
  }

  /** Starts a run of a machine; resolves once its process runs and run.json records it. */
  async start(spec: MachineRunSpec): Promise<RunningMachine> {
    this.#assertOpen();
    await validateRunSpec(spec);
    const { machineId } = spec;
    if (this.#machines.has(machineId)) throw new MachineAlreadyRunningError(machineId);
    if (this.#busy.has(machineId)) throw new MachineBusyError(machineId);
    this.#busy.add(machineId);
    try {
      return await this.#launch(spec);
    } finally {
      this.#busy.delete(machineId);
    }
  }

  /**
   * Signals the machine's group, waits up to the timeout, then SIGKILLs it; resolves with the recorded
   * exit. A suspended machine is discarded instead: killed at once, without running again (as Fly
   * drops a suspended machine's snapshot when it is stopped).
   */
  async stop(machineId: string, options: StopOptions = {}): Promise<ExitInfo> {
    const signal = parseSignal(options.signal ?? "SIGTERM");
    const m = this.#running(machineId);
    const exited = this.#waitExit(m);
    if (m.suspended) {
      await this.#control(m, { requested: true });
      await this.#kill(m);
      return exited;
    }
    await this.#control(m, { requested: true, killed: m.control.killed || signal === "SIGKILL" });
    this.#send(m, signal);
    // A process stopped by a SIGSTOP sent through signal() acts on the stop signal only once it runs.
    if (signal !== "SIGKILL") this.#send(m, "SIGCONT");
    if (await settlesWithin(exited, options.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS)) return exited;
    await this.#kill(m);
    return exited;
  }

  /** Sends a signal (a name such as "SIGUSR1") to the machine's process group. */
  signal(machineId: string, signal: string): void {
    const name = parseSignal(signal);
    this.#send(this.#running(machineId), name);
  }

  /**
   * Freezes all of the machine's processes, keeping them and their memory, and resolves once every one
   * is frozen: with the cgroup freezer when the run has a cgroup, else SIGSTOP to the group. Throws
   * MachineSuspendError (the machine left running) when that does not happen within the timeout.
   */
  async suspend(machineId: string): Promise<void> {
    const m = this.#running(machineId);
    // Set first: a stop that comes while the freeze is under way discards the machine.
    m.suspended = true;
    let done: boolean;
    if (m.cgroup) {
      done = await m.cgroup.freeze(this.#suspendTimeoutMs);
    } else {
      this.#send(m, "SIGSTOP");
      done = await pollUntil(() => groupStopped(m), this.#suspendTimeoutMs);
      if (!done) this.#send(m, "SIGCONT");
    }
    if (!done) {
      m.suspended = false;
      const what = m.cgroup ? `not every process in ${m.cgroup.path} froze` : "not every process stopped";
      throw new MachineSuspendError(machineId, `${what} within ${this.#suspendTimeoutMs} ms`);
    }
  }

  /** Lets a suspended machine run on, the same processes with the same memory; returns at once. */
  resume(machineId: string): void {
    const m = this.#running(machineId);
    if (m.cgroup) m.cgroup.thaw();
    else this.#send(m, "SIGCONT");
    m.suspended = false;
  }

  /** How this driver suspends machines it starts: a cgroup freezer (v1 or v2) or signals, and why. */
  suspendMode(): SuspendInfo {
    return { ...this.#parts.cgroup.suspendInfo() };
  }

  /**
   * The cgroup.procs files of a running machine (its freezer's and its limits'): a process that joins
   * them all, as an exec'd command must, is frozen with the machine and held to its limits.
   */
  cgroupProcsFiles(machineId: string): string[] {
    const m = this.#running(machineId);
    return procsFilesOf(m.cgroup, m.limits);
  }

  /**
   * Runs a command inside a running machine (crun exec): in its namespaces, as its user, with its
   * capabilities, seccomp filter and cgroups, never on the host. Output beyond `maxBytes` per stream
   * (default 1 MiB) is dropped; past the timeout the command is SIGKILLed (exitSignal 9).
   */
  async exec(
    machineId: string,
    req: { command: string[]; timeoutMs: number; maxBytes?: number },
  ): Promise<{ stdout: string; stderr: string; exitCode: number; exitSignal?: number; truncated: boolean }> {
    return crunExec(containerIdOf(this.#stateDir, machineId), {
      ...(await this.#execTarget(machineId, req.command)),
      timeoutMs: req.timeoutMs,
      maxBytes: req.maxBytes ?? DEFAULT_EXEC_BYTES,
    });
  }

  /**
   * Starts a command inside a running machine like `exec`, but streaming (a tunnel's `ssh console`):
   * stdin a pipe, no timeout; with `tty`, on a terminal of that size (TERM=xterm), one output stream.
   */
  async execStream(
    machineId: string,
    req: { command: string[]; tty?: { cols: number; rows: number } },
  ): Promise<CrunExecProcess> {
    return spawnCrunExec(containerIdOf(this.#stateDir, machineId), {
      ...(await this.#execTarget(machineId, req.command)),
      ...(req.tty ? { tty: req.tty, env: { TERM: "xterm" } } : {}),
      stdin: true,
    });
  }

  /** Where and as whom a command runs inside a running machine; refuses a bad command or a suspended machine. */
  async #execTarget(
    machineId: string,
    command: string[],
  ): Promise<Pick<ExecSpawnRequest, "args" | "user" | "cwd" | "cgroupProcs">> {
    const m = this.#running(machineId);
    if (command.length === 0 || !command.every(isArgvString))
      throw new InvalidMachineSpecError("exec needs a command: a non-empty list of strings without NUL");
    if (m.suspended) throw new MachineNotRunningError(machineId);
    // As the machine's own user (the image's USER), in its working folder: crun exec would use root and /.
    const run = await m.dir.readRun();
    const userSpec = run?.spec.sandbox?.user ?? "";
    const user =
      userSpec === "" ? { uid: 0, gid: 0 } : await resolveUser(rootfsPaths(m.dir.path).target, userSpec);
    return {
      args: command,
      user,
      ...(run ? { cwd: run.spec.cwd } : {}),
      cgroupProcs: procsFilesOf(m.cgroup, m.limits),
    };
  }

  /** The cgroup a running machine's processes are in; null when it has none. */
  cgroupOf(machineId: string): CgroupRef | null {
    return this.#running(machineId).cgroup?.ref ?? null;
  }

  /**
   * Takes over what an earlier agent left in the state folder. A run whose process still lives (same pid
   * and start time) is adopted and watched; a run that ended unreported is returned in `exited` and
   * marked reported. Never starts anything. Register onExit before: adopted runs may exit at once.
   */
  async adopt(): Promise<AdoptResult> {
    this.#assertOpen();
    await this.#parts.address.load();
    const result: AdoptResult = { running: [], exited: [] };
    for (const machineId of await listMachineIds(this.#stateDir)) {
      const known = this.#machines.get(machineId);
      if (known) {
        if (!known.finishing) result.running.push({ ...known.machine });
        continue;
      }
      if (this.#busy.has(machineId)) continue;
      this.#busy.add(machineId);
      try {
        await this.#adoptOne(machineId, result);
        // A bundle holds the machine's environment, secrets included: one an agent killed mid-start
        // left behind goes now (crun read it long ago, or never will).
        await removeBundle(containerIdOf(this.#stateDir, machineId));
      } finally {
        this.#busy.delete(machineId);
      }
    }
    this.#updateTimer();
    return result;
  }

  /**
   * Kills the machine if it runs (SIGKILL, a requested exit), releases every part (in the reverse
   * order of launch) and deletes its state folder.
   */
  async destroy(machineId: string): Promise<void> {
    this.#assertOpen();
    if (!isValidMachineId(machineId))
      throw new InvalidMachineSpecError(`machine id ${JSON.stringify(machineId)}`);
    const m = this.#machines.get(machineId);
    if (m) {
      const exited = this.#waitExit(m);
      await this.#control(m, { requested: true });
      await this.#kill(m);
      await exited;
    } else if (this.#busy.has(machineId)) {
      throw new MachineBusyError(machineId);
    }
    const dir = new MachineDir(this.#stateDir, machineId);
    const teardown = { machineId, dir, lastRun: await dir.readRun() };
    for (const part of [...this.#parts.all].reverse()) await part.release(teardown);
    await dir.remove();
  }

  /** The last `limit` lines the machine printed (kept across its runs), oldest first. */
  async recentLogs(machineId: string, limit: number): Promise<LogEntry[]> {
    if (!isValidMachineId(machineId)) return [];
    return recentLogs(new MachineDir(this.#stateDir, machineId), limit);
  }

  /** The processes of a running machine as it sees them (pids inside its pid namespace); see ps.ts. */
  async ps(machineId: string): Promise<ProcessStat[]> {
    const m = this.#running(machineId);
    return machineProcesses({ leader: m.machine.pid, cgroupPids: m.cgroup?.pids() ?? [] });
  }

  /** The machines running now (started or adopted by this driver). */
  running(): RunningMachine[] {
    return [...this.#machines.values()].filter((m) => !m.finishing).map((m) => ({ ...m.machine }));
  }

  /**
   * Whether the machine's run has ended and its exit is being read (its group cleared, its exit
   * file read, its output drained): not running any more, and its exit listeners not called yet.
   */
  exiting(machineId: string): boolean {
    return this.#machines.get(machineId)?.finishing === true;
  }

  /** Calls `listener` once per run when the machine's process exits, requested or not. Returns an unsubscribe. */
  onExit(listener: ExitListener): () => void {
    this.#exitListeners.add(listener);
    return () => this.#exitListeners.delete(listener);
  }

  /**
   * Calls `listener` for each complete line the machines write: from the start of a fresh run, from the
   * end of the file for an adopted one (lines written while no agent ran are skipped). Returns an unsubscribe.
   */
  onLog(listener: LogListener): () => void {
    this.#logListeners.add(listener);
    return () => this.#logListeners.delete(listener);
  }

  /** Stops watching and tailing; the machines keep running for the next agent to adopt. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#updateTimer();
    const machines = [...this.#machines.values()];
    this.#machines.clear();
    for (const m of machines) {
      m.detachChild();
      for (const waiter of m.waiters.splice(0)) waiter.reject(new DriverClosedError());
    }
    await Promise.all(machines.map((m) => m.output.close()));
  }

  async #launch(spec: MachineRunSpec): Promise<RunningMachine> {
    const { machineId } = spec;
    const host = await this.#runtimeReady();
    if (!host.ok)
      throw new MachineStartError(machineId, `the sandbox cannot run on this host: ${host.reason}`);
    const dir = new MachineDir(this.#stateDir, machineId);
    const previous = await dir.readRun();
    // A run no agent adopted (yet) still counts: starting now would make a second copy.
    if (previous && liveProcessOf(dir, previous)) throw new MachineAlreadyRunningError(machineId);
    await dir.prepareRun();
    const run: RunSetup = {
      spec,
      dir,
      privateIp: "",
      privateIpv6: "",
      port: 0,
      cgroup: null,
      limits: null,
      rootfs: null,
      range: null,
      user: null,
      output: null,
      binds: [],
    };
    try {
      return await this.#spawn(run);
    } catch (err) {
      // The run's output tails end with it; the machine's resources stay for its next run or destroy.
      await run.output?.close();
      throw err;
    }
  }

  /** Prepares every part of the run (its chains at once), then starts the wrapper and records its pid. */
  async #spawn(run: RunSetup): Promise<RunningMachine> {
    const { spec } = run;
    const { machineId } = spec;
    const t0 = performance.now();
    const ms: Record<string, number> = {};
    const since = (from: number) => Math.round((performance.now() - from) * 10) / 10;
    const prepare = async (part: MachinePart) => {
      const started = performance.now();
      try {
        await part.prepare(run);
        ms[part.name] = since(started);
      } catch (err) {
        if (err instanceof MachineStartError) throw err;
        throw new MachineStartError(
          machineId,
          `could not prepare its ${part.name}: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
    };
    // The chains at once, each in its order; every chain settles before a failure is reported, so
    // nothing is still being set up when the caller cleans up.
    const prepared = await Promise.allSettled(
      this.#parts.chains.map(async (chain) => {
        for (const part of chain) await prepare(part);
      }),
    );
    const failed = prepared.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    const { privateIp, privateIpv6, port } = run;
    const { secretEnv } = spec;
    const env = {
      PATH: process.env.PATH ?? DEFAULT_PATH,
      ...spec.env,
      // Secrets override the config's env, as on Fly; they reach only the bundle (removed below).
      ...secretEnv,
      PORT: String(port),
      // As on Fly: the machine's address on its org's network when it has one.
      FLY_PRIVATE_IP: privateIpv6 || privateIp,
    };
    const containerId = containerIdOf(this.#stateDir, machineId);
    ms.parts = since(t0);
    const spawning = performance.now();
    let machine: RunningMachine;
    let ended: Promise<void>;
    try {
      ({ machine, ended } = await this.#startSandbox(run, containerId, env));
    } catch (err) {
      // The bundle holds the environment, secrets included: a start that failed after writing it
      // (the run record, the spawn, the pid) must not leave it on disk until a later start or adoption.
      await removeBundle(containerId).catch((removeErr: unknown) =>
        this.#logger.warn({ err: removeErr, machineId }, "could not remove the bundle of a failed start"),
      );
      throw err;
    }
    // A signal from outside reaches a namespace's init only once it handles it: start returns when
    // the init has forked the app, so a stop or signal right after it is not lost.
    ms.spawned = since(spawning);
    const forking = performance.now();
    await Promise.race([untilInitForked(containerId, BUNDLE_WAIT_MS), ended]);
    ms.init_forked = since(forking);
    ms.total = since(t0);
    // Where a start's time went: each part's preparation (the chains run at once), the spawn of the
    // wrapper and crun until the pid is recorded, then the wait for the init to fork the app.
    this.#logger.debug({ machineId, ms }, "machine start timings");
    return { ...machine };
  }

  /**
   * Writes the bundle, starts the wrapper (crun under it), records its pid and removes the bundle
   * once crun has its copy. A throw may leave the bundle: the caller removes it.
   */
  async #startSandbox(
    run: RunSetup,
    containerId: string,
    env: Record<string, string>,
  ): Promise<{ machine: RunningMachine; ended: Promise<void> }> {
    const { spec, dir } = run;
    const { machineId } = spec;
    const { privateIp, privateIpv6, port, cgroup } = run;
    // Neither the secrets nor the files (a secret's among them) reach run.json.
    const { secretEnv: _secretEnv, files: _files, ...recorded } = spec;
    let launch: { wrapper: string; argv: string[]; cwd: string; env: Record<string, string> };
    try {
      // What crun kept of a run killed with it (a SIGKILL to the group) would refuse the id.
      await deleteContainer(containerId);
      const argv = await sandboxCommand(
        spec,
        {
          containerId,
          rootfs: run.rootfs as string,
          range: run.range as IdRange,
          user: run.user ?? { uid: 0, gid: 0 },
          hardened: this.#hardened,
          machineDir: dir.path,
          privateIpv6,
          binds: run.binds,
        },
        env,
      );
      // The sandbox gets `env` from the bundle; the wrapper needs only a PATH.
      launch = {
        wrapper: await machineWrapper(),
        argv,
        cwd: dir.path,
        env: { PATH: process.env.PATH ?? DEFAULT_PATH },
      };
    } catch (err) {
      throw new MachineStartError(machineId, `could not prepare the sandbox: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const runId = randomUUID();
    const record: RunRecord = {
      runId,
      spec: recorded,
      privateIp,
      privateIpv6,
      port,
      pid: null,
      startTime: null,
      cgroup: cgroup?.ref ?? null,
      limits: run.limits?.ref ?? null,
    };
    await dir.writeRun(record);

    const outputs = STREAMS.map((stream) => openSync(dir.logFile(stream), "a", 0o600));
    let child: ChildProcess;
    try {
      child = spawn(launch.wrapper, wrapperArgs(dir.exitFile, launch.argv), {
        cwd: launch.cwd,
        // The wrapper joins the cgroups before it forks, and removes the variables from the app's env.
        // crun stays at the wrapper's oom_score_adj (-1000 where it may): the runtime spec puts the
        // app back at 0, so the OOM killer picks the app and never crun between it and the wrapper.
        env: {
          ...launch.env,
          [CGROUP_ENV]: procsFilesOf(cgroup, run.limits).join(":"),
          [OOM_SCORE_ADJ_ENV]: "-1000",
        },
        // Its own session and process group: signals to the agent's group do not reach it, and the
        // driver signals the machine's whole group.
        detached: true,
        // Files, not pipes: a dead agent must not leave the app writing into a closed pipe. fd 3 is
        // the wrapper's "forked" notice; it closes it before the app runs.
        stdio: ["ignore", outputs[0], outputs[1], "pipe"],
      });
    } catch (err) {
      throw new MachineStartError(machineId, "could not spawn the process", { cause: err });
    } finally {
      for (const fd of outputs) closeSync(fd);
    }
    child.on("error", (err) => this.#logger.warn({ err, machineId }, "machine process error"));
    // Listened to at once: a fast exit makes Node flush and close the pipe before start() gets to wait.
    const forked = untilForked(child.stdio[3]);

    const pid = child.pid;
    if (pid === undefined) {
      const error = await new Promise<Error>((resolve) => child.once("error", resolve));
      throw new MachineStartError(machineId, error.message, { cause: error });
    }
    // Until the event loop reaps it, even a process that already exited still has its /proc entry.
    const stat = readProcStat(pid);
    if (stat === null) {
      throw new MachineStartError(machineId, `process ${pid} vanished before it could be recorded`);
    }
    child.unref();
    const machine: RunningMachine = {
      machineId,
      pid,
      startTime: stat.startTime,
      privateIp,
      privateIpv6,
      port,
    };
    const control = { runId, requested: false, killed: false };
    const output = run.output as RunOutput;
    const m = this.#track(dir, runId, machine, control, output, child, {
      sandboxed: true,
      cgroup,
      limits: run.limits,
      suspended: false,
    });
    try {
      await dir.writeRun({ ...record, pid, startTime: stat.startTime });
    } catch (err) {
      // A run the state folder does not know would be invisible to the next agent: undo it.
      this.#machines.delete(machineId);
      m.detachChild();
      killGroup({ machine, cgroup }, "SIGKILL");
      throw new MachineStartError(machineId, "could not record run.json", { cause: err });
    }
    this.#updateTimer();
    await forked;
    // The bundle holds the environment: it goes once crun has its own copy (in its root-only state
    // on /run), or once the run has already ended.
    const ended = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    await Promise.race([untilCreated(containerId, BUNDLE_WAIT_MS), ended]);
    await removeBundle(containerId);
    return { machine, ended };
  }

  async #adoptOne(machineId: string, result: AdoptResult): Promise<void> {
    const dir = new MachineDir(this.#stateDir, machineId);
    const run = await dir.readRun();
    if (!run || (await dir.isReported(run.runId))) return;
    const control = (await dir.readControl(run.runId)) ?? {
      runId: run.runId,
      requested: false,
      killed: false,
    };
    const proc = liveProcessOf(dir, run);
    if (proc) {
      // An agent killed between spawn and recording the pid left a run without one: record it now.
      if (run.pid === null) await dir.writeRun({ ...run, ...proc });
      const machine: RunningMachine = {
        machineId,
        ...proc,
        privateIp: run.privateIp,
        privateIpv6: run.privateIpv6 ?? "",
        port: run.port,
      };
      // The cgroup outlives the agent, and so does its frozen state: a suspended machine stays suspended.
      const cgroup = this.#parts.cgroup.recorded(run.cgroup);
      const suspended = cgroup ? cgroup.isFreezeRequested() : groupStopped({ machine, cgroup });
      const output = await this.#parts.output.attach(machineId, dir);
      this.#track(dir, run.runId, machine, control, output, null, {
        sandboxed: true,
        cgroup,
        limits: this.#parts.cgroup.recordedLimits(run.limits),
        suspended,
      });
      result.running.push({ ...machine });
      return;
    }
    const exit = await exitInfo(dir, control, null, this.#parts.cgroup.recordedLimits(run.limits));
    await dir.writeReported({ runId: run.runId, exit });
    result.exited.push({ machineId, exit });
  }

  #track(
    dir: MachineDir,
    runId: string,
    machine: RunningMachine,
    control: ControlRecord,
    output: RunOutput,
    child: ChildProcess | null,
    how: {
      sandboxed: boolean;
      cgroup: MachineCgroup | null;
      limits: MachineLimits | null;
      suspended: boolean;
    },
  ): Tracked {
    const m: Tracked = {
      ...how,
      dir,
      runId,
      machine,
      output,
      child,
      detachChild: () => {},
      childSignal: null,
      control,
      controlWrite: Promise.resolve(),
      finishing: false,
      waiters: [],
    };
    if (child) {
      const onExit = (_code: number | null, signal: NodeJS.Signals | null) => {
        m.childSignal = signal;
        this.#finish(m);
      };
      child.once("exit", onExit);
      m.detachChild = () => child.off("exit", onExit);
    }
    this.#machines.set(machine.machineId, m);
    return m;
  }

  /** Reports a run's exit once: logs drained first, then the listeners, then reported.json, then waiters. */
  #finish(m: Tracked): void {
    if (m.finishing) return;
    m.finishing = true;
    const { machineId } = m.machine;
    const done = async () => {
      // The run is over: what escaped its process group goes too, as when a VM stops.
      await m.cgroup?.killAll().catch((err: unknown) => {
        this.#logger.warn({ err, machineId, cgroup: m.cgroup?.path }, "could not clear the machine's cgroup");
      });
      const exit = await exitInfo(m.dir, m.control, m.childSignal, m.limits);
      await m.output.drain().finally(() => m.output.close());
      if (this.#closed) return;
      this.#machines.delete(machineId);
      this.#updateTimer();
      for (const listener of this.#exitListeners) {
        try {
          listener(machineId, exit);
        } catch (err) {
          this.#logger.warn({ err, machineId }, "exit listener failed");
        }
      }
      await m.dir.writeReported({ runId: m.runId, exit }).catch((err: unknown) => {
        this.#logger.warn({ err, machineId }, "could not record the reported exit");
      });
      for (const waiter of m.waiters.splice(0)) waiter.resolve(exit);
    };
    done().catch((err: unknown) => {
      this.#logger.warn({ err, machineId }, "exit handling failed");
      // Not exiting any more: the agent's next look records the exit it could not be told of.
      if (this.#machines.get(machineId) === m) {
        this.#machines.delete(machineId);
        this.#updateTimer();
      }
    });
  }

  #running(machineId: string): Tracked {
    this.#assertOpen();
    const m = this.#machines.get(machineId);
    if (!m) throw new MachineNotRunningError(machineId);
    return m;
  }

  #waitExit(m: Tracked): Promise<ExitInfo> {
    const exited = new Promise<ExitInfo>((resolve, reject) => m.waiters.push({ resolve, reject }));
    // A caller that fails before awaiting must not leave a rejection (on close) unhandled.
    exited.catch(() => {});
    return exited;
  }

  async #control(
    m: Tracked,
    change: Partial<Pick<ControlRecord, "requested" | "killed" | "sent">>,
  ): Promise<void> {
    m.control = { ...m.control, ...change };
    m.controlWrite = m.controlWrite.catch(() => {}).then(() => m.dir.writeControl(m.control));
    await m.controlWrite;
  }

  /**
   * SIGKILLs the machine's group and everything in its cgroup. A frozen task dies only once thawed
   * (cgroup v1): killAll thaws after the kill, so the machine never runs user code again.
   */
  async #kill(m: Tracked): Promise<void> {
    await this.#control(m, { killed: true });
    this.#send(m, "SIGKILL");
    await m.cgroup?.killAll();
  }

  #send(m: Tracked, signal: NodeJS.Signals): void {
    if (signal === "SIGKILL" && !m.control.killed) {
      // SIGKILL kills the wrapper too, so nobody records the exit: remember that it came from us.
      // In memory at once for this agent; the write is for an agent that takes over.
      this.#control(m, { killed: true }).catch((err: unknown) =>
        this.#logger.warn({ err, machineId: m.machine.machineId }, "could not record the SIGKILL"),
      );
    }
    if (!GROUP_ONLY.has(signal) && !m.control.sent?.includes(signal)) {
      this.#control(m, { sent: [...(m.control.sent ?? []), signal] }).catch((err: unknown) =>
        this.#logger.warn({ err, machineId: m.machine.machineId }, "could not record the signal sent"),
      );
    }
    if (m.sandboxed && !GROUP_ONLY.has(signal))
      signalSandboxed(m.machine, containerIdOf(this.#stateDir, m.machine.machineId), signal);
    else killGroup(m, signal);
  }

  /**
   * Checks (once) that crun can run here, and readies the host for it (see prepareCrunHost), with the
   * machines' wrapper built.
   */
  #runtimeReady(): Promise<{ ok: true } | { ok: false; reason: string }> {
    this.#runtime ??= (async () => {
      const host = await prepareCrunHost();
      if (!host.ok) return host;
      return machineWrapper().then(
        () => host,
        (err: unknown) => ({ ok: false as const, reason: (err as Error).message }),
      );
    })();
    return this.#runtime;
  }

  #emitLog(machineId: string, entry: LogEntry): void {
    for (const listener of this.#logListeners) {
      try {
        listener(machineId, entry);
      } catch (err) {
        this.#logger.warn({ err, machineId }, "log listener failed");
      }
    }
  }

  #updateTimer(): void {
    const needed = !this.#closed && this.#machines.size > 0;
    if (needed && !this.#timer) {
      this.#timer = setInterval(() => this.#poll(), this.#pollMs);
      this.#timer.unref();
    } else if (!needed && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  /** Notices exits of adopted runs (their parent is gone, so no exit event comes) and wakes the log tails. */
  #poll(): void {
    this.#polls++;
    const wakeTails = this.#polls % TAIL_FALLBACK_POLLS === 0;
    for (const m of this.#machines.values()) {
      if (m.finishing) continue;
      if (m.child === null && !isSameLiveProcess(m.machine.pid, m.machine.startTime)) {
        this.#finish(m);
      } else if (wakeTails) {
        m.output.poke();
      }
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new DriverClosedError();
  }
}

/** The process of a run if it still lives: by its recorded pid and start time, or by its wrapper's argv. */
function liveProcessOf(dir: MachineDir, run: RunRecord): { pid: number; startTime: number } | null {
  if (run.pid !== null && run.startTime !== null) {
    return isSameLiveProcess(run.pid, run.startTime) ? { pid: run.pid, startTime: run.startTime } : null;
  }
  return findWrapper(dir.exitFile);
}

/**
 * How a run ended: the wrapper's record, else the SIGKILL the driver sent, else the wrapper's own death.
 * An OOM kill is a run that ended by SIGKILL (the status 137 a runtime's init also reports for its
 * child) after the OOM killer killed a process in the machine's memory cgroup.
 */
async function exitInfo(
  dir: MachineDir,
  control: ControlRecord,
  wrapperSignal: NodeJS.Signals | null,
  limits: MachineLimits | null,
): Promise<ExitInfo> {
  const exit = await recordedExit(dir, control, wrapperSignal);
  const oomKilled = exit.exitCode === 128 + signalNumber("SIGKILL") && limits?.oomKilledSinceStart() === true;
  return oomKilled ? { ...exit, oomKilled } : exit;
}

async function recordedExit(
  dir: MachineDir,
  control: ControlRecord,
  wrapperSignal: NodeJS.Signals | null,
): Promise<ExitInfo> {
  const { requested } = control;
  const status = await readExitStatus(dir.exitFile);
  if (status !== null) {
    const exit = decodeWaitStatus(status);
    // crun's 128+n: a death by a signal the driver sent (or its SIGKILL), else an exit code like any.
    const n = (exit.exitCode ?? 0) - 128;
    const sent = n > 0 && n < 65 ? signalName(n) : undefined;
    if (
      exit.signal === undefined &&
      sent &&
      (control.sent?.includes(sent) || (sent === "SIGKILL" && control.killed))
    )
      return { ...exit, signal: sent, requested };
    return { ...exit, requested };
  }
  if (control.killed) return { exitCode: 128 + signalNumber("SIGKILL"), signal: "SIGKILL", requested };
  // The wrapper died of a signal before it could record anything (one sent before its handlers were set).
  if (wrapperSignal) return { exitCode: 128 + signalNumber(wrapperSignal), signal: wrapperSignal, requested };
  return { exitCode: null, requested };
}

/** The cgroup.procs files a machine's processes join: the freezer's, then the limits'. */
function procsFilesOf(cgroup: MachineCgroup | null, limits: MachineLimits | null): string[] {
  return [...(cgroup ? [cgroup.procsFile] : []), ...(limits?.procsFiles ?? [])];
}

/** Signals that must reach the whole group, crun's own process included. */
const GROUP_ONLY: ReadonlySet<NodeJS.Signals> = new Set(["SIGKILL", "SIGSTOP", "SIGCONT"]);

/**
 * Signals a sandboxed machine's init (catatonit, pid 1 of its namespace, as crun's state records it),
 * which passes the signal to the app: the app gets it once, and the wrapper lives on to record how it
 * ended. Before crun has recorded its init, crun itself gets it (and passes it on once it can).
 */
function signalSandboxed(machine: RunningMachine, containerId: string, signal: NodeJS.Signals): void {
  if (!isSameLiveProcess(machine.pid, machine.startTime)) return;
  const init = containerInit(containerId);
  const targets =
    init !== null
      ? [init]
      : listPids().filter((pid) => {
          const stat = readProcStat(pid);
          return stat?.pgrp === machine.pid && stat.ppid === machine.pid;
        });
  for (const pid of targets) {
    try {
      process.kill(pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
  }
}

/**
 * Signals every process of a machine: its process group and what left it (the container's init and
 * app are process group leaders of their own, in their pid namespace), unless its leader is gone (the
 * exit is then already under way; its cgroup, where it has one, holds what is left).
 */
function killGroup(m: Pick<Tracked, "machine" | "cgroup">, signal: NodeJS.Signals): void {
  const { machine } = m;
  // The start time check keeps a signal from reaching a group that reuses the pid.
  if (!isSameLiveProcess(machine.pid, machine.startTime)) return;
  for (const pid of machinePids({ leader: machine.pid, cgroupPids: m.cgroup?.pids() ?? [] })) {
    try {
      process.kill(pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
  }
}

/** Whether every live process of the machine is stopped (SIGSTOP took effect). */
function groupStopped(m: Pick<Tracked, "machine" | "cgroup">): boolean {
  const { machine } = m;
  if (!isSameLiveProcess(machine.pid, machine.startTime)) return true;
  for (const pid of machinePids({ leader: machine.pid, cgroupPids: m.cgroup?.pids() ?? [] })) {
    const stat = readProcStat(pid);
    if (stat && stat.state !== "T" && stat.state !== "t" && stat.state !== "Z" && stat.state !== "X")
      return false;
  }
  return true;
}

/** Whether `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, ms, false);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once the container's init has a child (catatonit has set itself up and forked the app), or after `ms`. */
async function untilInitForked(containerId: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const init = containerInit(containerId);
    if (init !== null && hasChildren(init)) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Whether the process has a child now (/proc/<pid>/task/<pid>/children, Linux 4.2+). */
function hasChildren(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim() !== "";
  } catch {
    return false;
  }
}

function isArgvString(value: unknown): value is string {
  return typeof value === "string" && !value.includes("\0");
}
