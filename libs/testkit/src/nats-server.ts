import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, rmSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { findBinary } from "./binaries.js";
import { ServerStartError, TimeoutError } from "./errors.js";
import { cleanupOnExit } from "./exit-cleanup.js";
import { logTail } from "./log-tail.js";
import { poll } from "./poll.js";

export interface NatsServer {
  /** nats://127.0.0.1:<port> */
  url: string;
  port: number;
  /** The current process; changes on restart(). */
  pid: number;
  /** JetStream's store_dir; survives kill() and restart(). */
  storeDir: string;
  /** SIGTERM, wait, then remove the temp dirs this server created. Idempotent. */
  stop(): Promise<void>;
  /** Sends `signal` (SIGKILL by default) and waits for the process to exit, keeping its dirs for restart(). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port with the same store dir (stopping it first if it runs). */
  restart(): Promise<void>;
  /** Resolves with how the current process ended ("exit code 1", "killed by SIGKILL"). */
  exited(): Promise<string>;
}

export interface NatsServerOptions {
  /** Reuse this JetStream store dir (never deleted); default: a fresh temp dir. */
  storeDir?: string;
  /** Default: a port the OS picks. */
  port?: number;
  /** Default: true. */
  jetstream?: boolean;
  /** server_name; JetStream clusters need one per node. */
  name?: string;
  /**
   * The server's `authorization { ... }` block (from @hangar/service's writeNatsCredentials): only
   * the users it lists get in, each with its permissions. Without it, anyone may connect.
   */
  authorization?: string;
  /** Appended verbatim to the generated config file. */
  extraConfig?: string;
}

const START_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 10_000;

/** Starts a nats-server on 127.0.0.1 (JetStream on by default) and resolves once it accepts clients. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const binary = findBinary("nats-server");
  const workDir = await mkdtemp(join(tmpdir(), "hangar-nats-"));
  const server = new NatsServerProcess(binary, workDir, opts);
  try {
    await server.launch(opts.port);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

interface Running {
  child: ChildProcess;
  /** Resolves with how the process ended. */
  exited: Promise<string>;
}

class NatsServerProcess implements NatsServer {
  url = "";
  port = 0;
  pid = 0;
  readonly storeDir: string;
  readonly #binary: string;
  readonly #workDir: string;
  readonly #opts: NatsServerOptions;
  readonly #forgetExitCleanup: () => void;
  #running: Running | undefined;
  #stopping: Promise<void> | undefined;

  constructor(binary: string, workDir: string, opts: NatsServerOptions) {
    this.#binary = binary;
    this.#workDir = workDir;
    this.#opts = opts;
    this.storeDir = opts.storeDir ?? join(workDir, "store");
    this.#forgetExitCleanup = cleanupOnExit(() => {
      this.#running?.child.kill("SIGKILL");
      rmSync(workDir, { recursive: true, force: true });
    });
  }

  async launch(port: number | undefined): Promise<void> {
    const configPath = join(this.#workDir, "nats-server.conf");
    const logPath = join(this.#workDir, "nats-server.log");
    await writeFile(configPath, this.#config(port));

    // A log file rather than pipes: nobody has to keep draining it, and it outlives the process.
    const log = openSync(logPath, "a");
    let child: ChildProcess;
    try {
      child = spawn(this.#binary, ["-c", configPath], { stdio: ["ignore", log, log] });
    } finally {
      closeSync(log);
    }
    const exited = new Promise<string>((resolve) => {
      child.once("exit", (code, signal) =>
        resolve(signal === null ? `exit code ${code}` : `killed by ${signal}`),
      );
      child.once("error", (error) => resolve(error.message));
    });
    this.#running = { child, exited };

    const ready = new AbortController();
    try {
      const outcome = await Promise.race([
        poll(() => readPortsFile(this.#workDir, child.pid), {
          what: "nats-server to write its ports file",
          timeoutMs: START_TIMEOUT_MS,
          signal: ready.signal,
        }).then((url) => ({ url })),
        exited.then((how) => ({ how })),
      ]);
      if ("how" in outcome) {
        throw new ServerStartError(
          "nats-server",
          `nats-server exited (${outcome.how}) before it was ready:\n${await logTail(logPath)}`,
        );
      }
      this.url = outcome.url;
      this.port = Number(new URL(outcome.url).port);
      this.pid = child.pid ?? 0;
    } catch (error) {
      child.kill("SIGKILL");
      if (error instanceof ServerStartError) throw error;
      throw new ServerStartError(
        "nats-server",
        `nats-server did not become ready: ${(error as Error).message}\n${await logTail(logPath)}`,
        { cause: error },
      );
    } finally {
      ready.abort();
    }
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const running = this.#running;
    if (running === undefined || !isAlive(running.child)) return;
    running.child.kill(signal);
    if (!(await exitsWithin(running, EXIT_TIMEOUT_MS))) {
      throw new TimeoutError(
        `nats-server (pid ${running.child.pid}) to exit after ${signal}`,
        EXIT_TIMEOUT_MS,
      );
    }
  }

  exited(): Promise<string> {
    return this.#running?.exited ?? Promise.resolve("not started");
  }

  async restart(): Promise<void> {
    if (this.#stopping !== undefined) {
      throw new ServerStartError(
        "nats-server",
        "restart() after stop(): its temp dirs are gone; start a new server",
      );
    }
    await this.#terminate();
    await this.launch(this.port);
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    await this.#terminate();
    await rm(this.#workDir, { recursive: true, force: true });
    this.#forgetExitCleanup();
  }

  /** SIGTERM for a clean JetStream shutdown, SIGKILL if it hangs. */
  async #terminate(): Promise<void> {
    const running = this.#running;
    if (running === undefined || !isAlive(running.child)) return;
    running.child.kill("SIGTERM");
    if (await exitsWithin(running, EXIT_TIMEOUT_MS)) return;
    running.child.kill("SIGKILL");
    await running.exited;
  }

  #config(port: number | undefined): string {
    const { jetstream = true, name, authorization, extraConfig } = this.#opts;
    const lines = [
      "host: 127.0.0.1",
      `port: ${port ?? -1}`,
      // The platform's (deploy/k8s nats.conf): an API body may be 1 MiB, and its event (or command)
      // is larger than the body once encoded; the default 1 MiB would refuse it.
      "max_payload: 4MB",
      `ports_file_dir: ${JSON.stringify(this.#workDir)}`,
      name === undefined ? "" : `server_name: ${JSON.stringify(name)}`,
      jetstream ? `jetstream { store_dir: ${JSON.stringify(this.storeDir)} }` : "",
      authorization ?? "",
      extraConfig ?? "",
    ];
    return `${lines.filter((line) => line !== "").join("\n")}\n`;
  }
}

function isAlive(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

async function exitsWithin(running: Running, ms: number): Promise<boolean> {
  const timeout = new AbortController();
  try {
    return await Promise.race([
      running.exited.then(() => true),
      sleep(ms, false, { signal: timeout.signal }),
    ]);
  } finally {
    timeout.abort();
  }
}

/** The client URL from `<exe>_<pid>.ports`, which nats-server writes once it listens. */
async function readPortsFile(dir: string, pid: number | undefined): Promise<string | undefined> {
  if (pid === undefined) return undefined;
  const file = (await readdir(dir)).find((name) => name.endsWith(`_${pid}.ports`));
  if (file === undefined) return undefined;
  try {
    const ports = JSON.parse(await readFile(join(dir, file), "utf8")) as { nats?: string[] };
    return ports.nats?.[0];
  } catch {
    // Read while nats-server was still writing it; the next poll sees the whole file.
    return undefined;
  }
}
