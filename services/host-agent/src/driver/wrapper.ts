import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, lstat, mkdir, readFile, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { isSameLiveProcess, listPids, readCmdline, readProcStat } from "./proc.js";
import { signalName } from "./signals.js";
import type { ExitInfo } from "./types.js";

const exec = promisify(execFile);

/*
 * Every machine runs under a small static C program, the leader of the machine's own process group
 * (native/wrapper.c, built with the host's C compiler on first use, see machineWrapper):
 *
 *   hangar-wrapper-<hash> <exit file> <argv...>
 *
 * It forks, execs the argv, waits, writes the raw wait status to the exit file (tmp + rename) and
 * finally SIGKILLs its whole group, so stragglers the app left behind die with it, as in a VM.
 * It records the exit while no agent is there to wait for it, and its stdio goes to files, so an agent
 * that dies takes nothing with it. A compiled program and not a script: an interpreter started per
 * machine (perl with POSIX takes 25 ms of CPU before its first line) would sit on every start.
 *
 * Why not `sh -c 'trap : TERM ...; "$@"; echo $? > f'`: the shell reports a death by signal n as
 * 128+n, the same as exit(128+n), so "SIGINT" and exit(130) look alike; every signal it does not trap
 * kills it before it writes the file; and it prints "Terminated" into the app's stderr. waitpid hands
 * back the full status.
 *
 * The wrapper catches (never ignores) every signal whose default would kill it, so signals sent to the
 * group reach the app while the wrapper lives on to write the status. Caught handlers revert to the
 * default on exec, so the app starts with default dispositions (an ignored signal would stay ignored).
 * Signals are blocked across fork, until the child has put the defaults back: one sent in between waits
 * and then acts on the app by its default, instead of vanishing into a copy of the wrapper's handler.
 * Once the app is forked, the wrapper writes its pid to fd 3 (when open): the driver's start() waits for
 * that, so a stop right after a start cannot hit a wrapper that has not set its handlers yet.
 * SIGKILL cannot be caught: a group SIGKILL kills the wrapper too, and the driver then records the
 * exit itself, since it knows it sent the SIGKILL.
 * The wrapper first writes its own pid to each of the machine's cgroup.procs files (named by
 * CGROUP_ENV: the freezer's and the limits', see cgroup.ts and cgroup-limits.ts): joining before the
 * fork leaves no moment in which the app or a child of it runs outside its cgroups and limits. It dies
 * (before forking) when it cannot join one.
 * It also sets its own oom_score_adj to -1000 (where it may: root), so that when the machine's memory
 * cgroup runs out the OOM killer picks the app and never the wrapper, which must live to record the
 * exit. The child execs with OOM_SCORE_ADJ_ENV's value (0 by default): a runtime that gives its
 * container process its own oom_score_adj (crun, from the runtime spec) is itself kept at -1000.
 */

/**
 * The wrapper's environment variable naming the cgroup.procs files it joins before it forks,
 * separated by ':', so the app and everything it forks are in the machine's cgroups from their first
 * instruction. The wrapper removes it from the environment the app gets.
 */
export const CGROUP_ENV = "HANGAR_CGROUP_PROCS";

/**
 * The wrapper's environment variable giving the oom_score_adj its child execs with (default 0); the
 * wrapper removes it from the environment the app gets.
 */
export const OOM_SCORE_ADJ_ENV = "HANGAR_APP_OOM_SCORE_ADJ";

/** The wrapper's source, in the package's native/: from src/driver and dist/driver, or from the bundle (bundle/main.mjs). */
const SOURCE =
  ["../../native/wrapper.c", "../native/wrapper.c"]
    .map((path) => fileURLToPath(new URL(path, import.meta.url)))
    .find((path) => existsSync(path)) ?? fileURLToPath(new URL("../../native/wrapper.c", import.meta.url));
/** Every wrapper binary is named this, then the hash of its source. */
const NAME = "hangar-wrapper-";
/** Where a host image puts the wrapper it built with its C compiler (deploy/images/Dockerfile). */
export const PREBUILT_WRAPPER_DIR = "/usr/local/libexec/hangar";
let built: Promise<string> | undefined;

/**
 * The path of the wrapper binary for this agent's source: the host image's prebuilt one, else built
 * once per host and source (static, with the host's cc) into a root-only folder on /run, by a
 * temporary name renamed into place, so agents building at once never run a half-written file.
 */
export function machineWrapper(): Promise<string> {
  built ??= (async () => {
    const source = await readFile(SOURCE);
    const name = `${NAME}${createHash("sha256").update(source).digest("hex").slice(0, 16)}`;
    const prebuilt = join(PREBUILT_WRAPPER_DIR, name);
    if (existsSync(prebuilt)) return prebuilt;
    const uid = process.getuid?.() ?? 0;
    const dir = uid === 0 ? "/run/hangar/bin" : join(tmpdir(), `hangar-bin-${uid}`);
    const out = join(dir, name);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    // Another local user could make the folder first (/tmp is everyone's) and plant a binary of the
    // public source's name in it: only a folder and a file of this user's own, that no one else can
    // write, are used.
    await mustBeOwn(dir, uid, true);
    if (existsSync(out)) {
      await mustBeOwn(out, uid, false);
      return out;
    }
    const tmp = `${out}.${randomBytes(8).toString("hex")}.tmp`;
    try {
      await exec("cc", ["-static", "-O2", "-o", tmp, SOURCE]);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new Error(
        `could not build the machine wrapper ${SOURCE} (install a C compiler and static libc: apt-get install gcc libc6-dev): ${(err as Error).message}`,
      );
    }
    await chmod(tmp, 0o755);
    await rename(tmp, out);
    return out;
  })();
  built.catch(() => {
    built = undefined;
  });
  return built;
}

/** Refuses `path` unless it is a real folder (or file) of `uid` that neither group nor others can write. */
export async function mustBeOwn(path: string, uid: number, folder: boolean): Promise<void> {
  const st = await lstat(path);
  const kindOk = folder ? st.isDirectory() : st.isFile();
  if (!kindOk || st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new Error(
      `${path} is not a ${folder ? "folder" : "file"} of uid ${uid} that only it can write: the machine wrapper is not taken from it (remove it and start again)`,
    );
  }
}

/** The argv (after the wrapper's path) that runs `cmd` under the wrapper, recording its exit status in `exitFile`. */
export function wrapperArgs(exitFile: string, cmd: readonly string[]): string[] {
  return [exitFile, ...cmd];
}

/**
 * Resolves once the wrapper has forked the app and its signal handlers are set: it then closes fd 3
 * (given to it as `stream`). Also resolves when the wrapper dies before that; its exit tells the rest.
 */
export function untilForked(stream: Readable | Writable | null | undefined): Promise<void> {
  if (!stream || stream.closed) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once("close", () => resolve());
    stream.once("error", () => resolve());
    // Flowing mode, so that the pid the wrapper writes does not sit unread and "close" can come.
    if ("resume" in stream) stream.resume();
  });
}

/** The raw wait status the wrapper recorded; null when there is none (yet) or it could not wait. */
export async function readExitStatus(exitFile: string): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(exitFile, "utf8");
  } catch {
    return null;
  }
  const status = Number.parseInt(text, 10);
  return Number.isInteger(status) && status >= 0 ? status : null;
}

/** Exit code and signal from a wait status: 128+n and the signal's name after a death by signal n. */
export function decodeWaitStatus(status: number): Omit<ExitInfo, "requested"> {
  const signal = status & 0x7f;
  if (signal === 0) return { exitCode: (status >> 8) & 0xff };
  return { exitCode: 128 + signal, signal: signalName(signal) };
}

/** The live wrapper process writing `exitFile`, found by its argv (for a run whose pid was never recorded). */
export function findWrapper(exitFile: string): { pid: number; startTime: number } | null {
  for (const pid of listPids()) {
    const argv = readCmdline(pid);
    if (!basename(argv?.[0] ?? "").startsWith(NAME) || argv?.[1] !== exitFile) continue;
    const stat = readProcStat(pid);
    if (stat && isSameLiveProcess(pid, stat.startTime)) return { pid, startTime: stat.startTime };
  }
  return null;
}
