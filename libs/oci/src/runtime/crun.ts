import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { SystemToolError } from "../errors.js";
import { run } from "../exec.js";
import { CONTAINERS_SECCOMP_PROFILE } from "./seccomp.js";
import type { RuntimeSpec } from "./spec.js";

/*
 * crun, the OCI runtime podman uses (Debian's package), runs machines and build steps from a runtime
 * spec. Its state (which holds a copy of the spec, environment included) and the bundles live on
 * /run, a tmpfs, in folders only root can read. Cgroups are Hangar's own (the wrapper joins the
 * machine's before crun starts, see the host agent's cgroup part), so crun runs with its cgroup
 * manager disabled.
 */

/** crun's state root. */
export const CRUN_ROOT = "/run/hangar/crun";
/** Where bundles (config.json) are written; each is removed once its container has started. */
export const BUNDLE_ROOT = "/run/hangar/bundles";
/** catatonit, podman's init, run as each container's pid 1. */
export const CATATONIT = "/usr/bin/catatonit";

const CANDIDATES = ["/usr/bin/crun", "/usr/local/bin/crun", "/bin/crun"];

/** crun's path, or undefined when it is not installed. */
export function crunPath(): string | undefined {
  return CANDIDATES.find((p) => existsSync(p));
}

/** The global options every crun call takes. */
export function crunGlobalArgs(): string[] {
  return ["--root", CRUN_ROOT, "--cgroup-manager=disabled"];
}

/** Valid container ids: what crun accepts and Hangar's machine ids are. */
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function checkId(id: string): void {
  if (!ID.test(id)) throw new SystemToolError(`container id ${JSON.stringify(id)} is not valid for crun`);
}

/**
 * Checks that this host can run the hardened sandbox, and fixes what it may: on a cgroup v1/v2 hybrid
 * whose unified hierarchy still lists controllers (this project's hosts have hugetlb there), crun
 * refuses to run at all; a controller no v2 cgroup uses is moved to a v1 hierarchy of its own, as
 * systemd's hybrid mode does for the rest. Returns what is missing, as install instructions.
 */
export async function prepareCrunHost(): Promise<{ ok: true } | { ok: false; reason: string }> {
  const missing: string[] = [];
  if (!crunPath()) missing.push("crun is not installed (apt-get install crun)");
  if (!existsSync(CATATONIT)) missing.push("catatonit is not installed (apt-get install catatonit)");
  if (!existsSync(CONTAINERS_SECCOMP_PROFILE))
    missing.push(
      `the seccomp profile ${CONTAINERS_SECCOMP_PROFILE} is missing (apt-get install golang-github-containers-common)`,
    );
  if (process.getuid?.() !== 0) missing.push("the sandbox needs root (run the host agent as root)");
  if (missing.length > 0) return { ok: false, reason: missing.join("; ") };
  const hybrid = await moveHybridControllers();
  if (hybrid) return { ok: false, reason: hybrid };
  await mkdir(CRUN_ROOT, { recursive: true, mode: 0o700 });
  await mkdir(BUNDLE_ROOT, { recursive: true, mode: 0o700 });
  await chmod(CRUN_ROOT, 0o700);
  await chmod(BUNDLE_ROOT, 0o700);
  return { ok: true };
}

const UNIFIED = "/sys/fs/cgroup/unified";

/** Mounts each controller the hybrid's unified hierarchy lists as a v1 hierarchy; why not, if it cannot. */
async function moveHybridControllers(): Promise<string | undefined> {
  const listed = await readFile(join(UNIFIED, "cgroup.controllers"), "utf8").catch(() => "");
  const controllers = listed.split(/\s+/).filter((c) => c !== "");
  if (controllers.length === 0) return undefined;
  const enabled = (await readFile(join(UNIFIED, "cgroup.subtree_control"), "utf8").catch(() => ""))
    .split(/\s+/)
    .filter((c) => c !== "");
  for (const c of controllers) {
    if (enabled.includes(c))
      return `crun cannot run on this cgroup hybrid: the controller ${c} is enabled in ${UNIFIED}; disable it there`;
    const at = join("/sys/fs/cgroup", c);
    await mkdir(at, { recursive: true });
    const mounted = await run("mount", ["-t", "cgroup", "-o", c, "cgroup", at], { allowFailure: true });
    if (mounted.code !== 0)
      return `crun cannot run on this cgroup hybrid: ${UNIFIED} lists ${c}, and mounting it as v1 failed: ${mounted.stderr.trim()}`;
  }
  return undefined;
}

/*
 * crun compiles a spec's seccomp profile with libseccomp at every start: about 20 ms of a start
 * that is otherwise about 25. It also keeps what it compiled in the container's state
 * (seccomp.bpf), and takes precompiled filter data through the `run.oci.seccomp_bpf_data`
 * annotation (crun(1)). So the first container of a profile has it compiled; its filter is kept on
 * /run, keyed by the profile and the crun binary, and every later container of that profile gets it.
 */

/** Where compiled seccomp filters are kept (root-only tmpfs). */
export const SECCOMP_CACHE = "/run/hangar/seccomp";
const BPF_ANNOTATION = "run.oci.seccomp_bpf_data";
const compiled = new Map<string, string>();
const keys = new WeakMap<object, string>();
/** Containers created from a profile not compiled yet: where their filter is to be kept. */
const toKeep = new Map<string, string>();

/** The cache file of a profile (for this crun binary). */
function seccompCacheFile(seccomp: object): string {
  let key = keys.get(seccomp);
  if (!key) {
    const crun = crunPath() ?? "";
    const st = crun ? statSync(crun) : { size: 0, mtimeMs: 0 };
    key = createHash("sha256")
      .update(`${st.size}:${st.mtimeMs}:`)
      .update(JSON.stringify(seccomp))
      .digest("hex")
      .slice(0, 32);
    keys.set(seccomp, key);
  }
  return join(SECCOMP_CACHE, `${key}.bpf`);
}

/** The spec with its profile's compiled filter attached, when one is kept. */
function withCompiledSeccomp(id: string, spec: RuntimeSpec): RuntimeSpec {
  const seccomp = (spec.linux as { seccomp?: object } | undefined)?.seccomp;
  if (!seccomp) return spec;
  const file = seccompCacheFile(seccomp);
  let data = compiled.get(file);
  if (data === undefined && existsSync(file)) {
    data = readFileSync(file).toString("base64");
    compiled.set(file, data);
  }
  if (data === undefined) {
    toKeep.set(id, file);
    return spec;
  }
  const annotations = {
    ...((spec.annotations as Record<string, string> | undefined) ?? {}),
    [BPF_ANNOTATION]: data,
  };
  return { ...spec, annotations };
}

/** Keeps the filter crun compiled for a created container whose profile had none kept yet. */
async function keepCompiledSeccomp(id: string): Promise<void> {
  const file = toKeep.get(id);
  if (!file) return;
  toKeep.delete(id);
  const data = await readFile(join(CRUN_ROOT, id, "seccomp.bpf")).catch(() => null);
  if (!data || data.length === 0) return;
  await mkdir(SECCOMP_CACHE, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  await rename(tmp, file);
  compiled.set(file, data.toString("base64"));
}

/** Writes the container's bundle (a root-only folder on /run holding config.json); returns its folder. */
export async function writeBundle(id: string, spec: RuntimeSpec): Promise<string> {
  checkId(id);
  const dir = join(BUNDLE_ROOT, id);
  // Synchronously: one small file on a start's path, where each threadpool round trip waits behind
  // the event loop of a busy agent.
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, "config.json"), JSON.stringify(withCompiledSeccomp(id, spec)), { mode: 0o600 });
  return dir;
}

/** Removes a container's bundle (its spec and environment). */
export async function removeBundle(id: string): Promise<void> {
  checkId(id);
  await rm(join(BUNDLE_ROOT, id), { recursive: true, force: true });
}

/** The argv that runs the container in the foreground: crun forwards signals and exits with its status. */
export function crunRunArgv(id: string, bundle: string): string[] {
  checkId(id);
  const crun = crunPath();
  if (!crun) throw new SystemToolError("crun is not installed (apt-get install crun)");
  return [crun, ...crunGlobalArgs(), "run", "--bundle", bundle, id];
}

/** Whether crun has state for the container (created and not deleted). */
export function containerExists(id: string): boolean {
  checkId(id);
  return existsSync(join(CRUN_ROOT, id));
}

/**
 * Resolves once crun has created the container or `ms` passed; whether it did. crun writes its state's
 * `status` last, after its own copy of the spec: from then on the bundle may go (removed earlier,
 * crun fails reading it).
 */
export async function untilCreated(id: string, ms: number): Promise<boolean> {
  checkId(id);
  const until = Date.now() + ms;
  const status = join(CRUN_ROOT, id, "status");
  while (!existsSync(status)) {
    if (Date.now() > until) {
      toKeep.delete(id);
      return false;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await keepCompiledSeccomp(id);
  return true;
}

/**
 * The host pid of the container's init as crun recorded it, if that process still lives (the same
 * start time: a pid reused since is not it); null before crun has recorded it or once it is gone.
 */
export function containerInit(id: string): number | null {
  checkId(id);
  let status: { pid?: number; "process-start-time"?: number };
  try {
    status = JSON.parse(readFileSync(join(CRUN_ROOT, id, "status"), "utf8")) as typeof status;
  } catch {
    return null;
  }
  const pid = status.pid;
  if (typeof pid !== "number" || pid <= 0) return null;
  try {
    // Field 22 of /proc/<pid>/stat, after the parenthesised name (which may hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]) === status["process-start-time"] ? pid : null;
  } catch {
    return null;
  }
}

/** Deletes what crun keeps of a container that is gone (a run killed with its crun leaves state behind). */
export async function deleteContainer(id: string): Promise<void> {
  checkId(id);
  if (!containerExists(id)) return;
  // A container whose init is gone (its crun was killed with it) is only a state folder: removing it
  // is all `crun delete` would do, without a process start. A live one is killed by crun first.
  const crun = crunPath();
  if (crun && containerInit(id) !== null)
    await run(crun, [...crunGlobalArgs(), "delete", "--force", id], { allowFailure: true });
  await rm(join(CRUN_ROOT, id), { recursive: true, force: true });
}

/** The ids of containers crun has state for. */
export async function listContainers(): Promise<string[]> {
  return readdir(CRUN_ROOT).catch(() => []);
}

export interface RunContainerOptions {
  /** Where the container's stdout and stderr go (file descriptors, or "inherit"/"pipe"). */
  stdio?: ["ignore", number | "inherit" | "pipe", number | "inherit" | "pipe"];
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** cgroup.procs files crun joins before it starts (its cgroup manager is disabled): the container's limits. */
  cgroupProcs?: readonly string[];
}

/**
 * Runs a container to its end (a build step): writes the bundle, runs crun in the foreground, removes
 * the bundle once the container exists, and resolves with crun's exit status (the process's, 128+n
 * after a death by signal n, as catatonit reports it).
 */
export async function runContainer(
  id: string,
  spec: RuntimeSpec,
  opts: RunContainerOptions = {},
): Promise<{ exitCode: number }> {
  await deleteContainer(id);
  const bundle = await writeBundle(id, spec);
  try {
    const crun = crunRunArgv(id, bundle);
    const [file, ...args] = opts.cgroupProcs?.length
      ? ["/usr/bin/perl", "-e", JOIN_AND_EXEC, opts.cgroupProcs.join(":"), ...crun]
      : crun;
    const child = spawn(file as string, args, { stdio: opts.stdio ?? ["ignore", "pipe", "pipe"] });
    if (opts.onStdout) child.stdout?.on("data", opts.onStdout);
    if (opts.onStderr) child.stderr?.on("data", opts.onStderr);
    const closed = new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code, signal) => resolve(code ?? (signal ? 128 : -1)));
    });
    // The bundle goes once crun has read it; the finally below removes it in any case.
    void untilCreated(id, 10_000)
      .then(() => removeBundle(id))
      .catch(() => {});
    return { exitCode: await closed };
  } finally {
    await removeBundle(id);
    await deleteContainer(id);
  }
}

/** A process to start inside a running container (crun exec). */
export interface ExecSpawnRequest {
  args: readonly string[];
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  user?: { uid: number; gid: number };
  /**
   * cgroup.procs files the command joins before crun starts it (the machine's: crun runs with its
   * cgroup manager disabled, so nothing else would put an exec'd command under the machine's limits).
   */
  cgroupProcs?: readonly string[];
  /**
   * Runs the command on a terminal of this size (crun exec -t, under a PTY util-linux `script` makes
   * on the host): its stdin, stdout and stderr are that terminal, so there is one output stream.
   */
  tty?: { cols: number; rows: number };
  /** Whether the caller writes the command's stdin (otherwise it reads /dev/null). */
  stdin?: boolean;
}

export interface ExecRequest extends Omit<ExecSpawnRequest, "tty" | "stdin"> {
  timeoutMs: number;
  /** Bytes kept of stdout and of stderr; what comes after is dropped. */
  maxBytes: number;
}

/** Joins each cgroup.procs file of a ':'-separated list, then execs the rest of the argv (no fork). */
const JOIN_AND_EXEC = `for my $f (split /:/, shift @ARGV) {
  open(my $procs, ">", $f) or die "hangar exec: $f: $!\n";
  defined(syswrite($procs, "$$\n")) or die "hangar exec: joining $f: $!\n";
  close($procs);
}
exec { $ARGV[0] } @ARGV or die "hangar exec: $ARGV[0]: $!\n";`;

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  /** Set when the process was killed for running past the timeout. */
  exitSignal?: number;
  truncated: boolean;
}

/**
 * Runs a process inside a running container (crun exec): in its namespaces, as its user, with its
 * capabilities, seccomp filter and no_new_privs. Past the timeout the process is SIGKILLed.
 */
export async function crunExec(id: string, req: ExecRequest): Promise<ExecResult> {
  const exec = spawnCrunExec(id, req);
  const { child } = exec;
  const out = { stdout: [] as Buffer[], stderr: [] as Buffer[], sizes: { stdout: 0, stderr: 0 } };
  let truncated = false;
  for (const name of ["stdout", "stderr"] as const) {
    child[name].on("data", (b: Buffer) => {
      const room = req.maxBytes - out.sizes[name];
      if (room <= 0) {
        truncated = true;
        return;
      }
      const kept = b.length > room ? b.subarray(0, room) : b;
      if (kept.length < b.length) truncated = true;
      out[name].push(kept);
      out.sizes[name] += kept.length;
    });
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void exec.kill();
  }, req.timeoutMs);
  try {
    const code = await exec.exited;
    return {
      stdout: Buffer.concat(out.stdout).toString(),
      stderr: Buffer.concat(out.stderr).toString(),
      exitCode: code,
      ...(timedOut ? { exitSignal: 9 } : {}),
      truncated,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** A process started by spawnCrunExec. */
export interface CrunExecProcess {
  /** crun (or `script` around it, with a tty): stdin is a pipe only when asked for. */
  child: ChildProcess & { stdout: Readable; stderr: Readable };
  /** crun's exit status: the command's (128+n after a death by signal n); resolves once its output is read. */
  exited: Promise<number>;
  /** SIGKILLs the command inside the container (not only crun, which would leave it running). */
  kill(): Promise<void>;
}

/** Quotes a word for sh. */
const shellWord = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * Starts a process inside a running container (crun exec): in its namespaces, as its user, with its
 * capabilities, seccomp filter and no_new_privs, and streams its stdio.
 */
export function spawnCrunExec(id: string, req: ExecSpawnRequest): CrunExecProcess {
  checkId(id);
  const crun = crunPath();
  if (!crun) throw new SystemToolError("crun is not installed (apt-get install crun)");
  const pidFile = join(
    BUNDLE_ROOT,
    `${id}.exec-${process.pid}-${Date.now()}-${randomBytes(4).toString("hex")}.pid`,
  );
  // crun exec gives the process no_new_privs only when asked, whatever the container's spec says.
  const args = [...crunGlobalArgs(), "exec", "--no-new-privs", "--pid-file", pidFile];
  // A terminal of its own inside the container (its devpts), which crun relays to its stdio, sized
  // as that is: the command is its session's leader with it as controlling terminal (job control).
  if (req.tty) args.push("--tty");
  for (const [k, v] of Object.entries(req.env ?? {})) args.push("--env", `${k}=${v}`);
  if (req.cwd) args.push("--cwd", req.cwd);
  if (req.user) args.push("--user", `${req.user.uid}:${req.user.gid}`);
  args.push(id, ...req.args);
  const argv = req.cgroupProcs?.length
    ? ["/usr/bin/perl", "-e", JOIN_AND_EXEC, req.cgroupProcs.join(":"), crun, ...args]
    : [crun, ...args];
  const stdio = [req.stdin ? "pipe" : "ignore", "pipe", "pipe"] as const;
  // crun exec -t relays the container's terminal to its own stdio, which must be a terminal too: Node
  // cannot make one (nor receive the PTY master crun would pass over a console socket), so `script`
  // holds one here, sizes it, and relays it on plain pipes (-e: its exit status is the command's).
  const [file, ...rest] = req.tty
    ? [
        "/usr/bin/script",
        "-q",
        "-f",
        "-e",
        "-c",
        `stty rows ${req.tty.rows} cols ${req.tty.cols} && exec ${argv.map(shellWord).join(" ")}`,
        "/dev/null",
      ]
    : argv;
  const child = spawn(file as string, rest, {
    stdio: [...stdio],
    ...(req.tty ? { env: { ...process.env, SHELL: "/bin/sh" } } : {}),
  }) as CrunExecProcess["child"];
  const exited = new Promise<number>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (c, signal) => resolve(c ?? (signal ? 128 : -1)));
  }).finally(() => rm(pidFile, { force: true }));
  return {
    child,
    exited,
    kill: () =>
      readFile(pidFile, "utf8")
        .then((pid) => process.kill(Number.parseInt(pid, 10), "SIGKILL"))
        .catch(() => {
          child.kill("SIGKILL");
        })
        .then(() => undefined),
  };
}
