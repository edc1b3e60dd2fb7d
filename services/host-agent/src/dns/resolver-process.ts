import { type ChildProcess, spawn } from "node:child_process";
import { setPriority } from "node:os";
import { extname as extnameOf } from "node:path";
import { fileURLToPath } from "node:url";
import type { ExistingMachine } from "@hangar/domain";
import type { Logger } from "@hangar/telemetry";
import { dnsMachineOf } from "./from-machine.js";
import type { DnsMachine } from "./names.js";
import type { ResolverCommand, ResolverReply } from "./resolver-main.js";
import type { InternalDnsOptions } from "./server.js";

/** How long a new resolver process may take to bind its sockets and say so. */
const READY_TIMEOUT_MS = 30_000;
/** The wait before a resolver process that died is started again. */
const RESPAWN_DELAY_MS = 1_000;
/** The resolver process's niceness: a lookup that waits behind the host's busy processes is a slow start. */
const RESOLVER_PRIORITY = -5;

export interface ResolverProcessOptions extends Omit<InternalDnsOptions, "logger"> {
  logger: Pick<Logger, "info" | "warn" | "debug" | "level">;
}

/**
 * The host's internal DNS resolver (InternalDns) in a process of its own: the agent feeds it the
 * name table over IPC, and its answers never queue behind the agent's event loop (pnpm bench
 * network's dns_p99_ms). It lives in the agent's namespace, so forwarded names go out as the
 * agent's would, and serves on sockets it opens in the host's namespace. One that dies is started
 * again with the whole table; it exits when the agent does.
 */
export class ResolverProcess {
  /** The table as sent, by app and id: what a new process is given. */
  private readonly records = new Map<string, DnsMachine>();
  private child: ChildProcess | undefined;
  private closing = false;
  private syncs = 0;
  private readonly waiting = new Map<number, () => void>();

  private constructor(private readonly opts: ResolverProcessOptions) {}

  /** Starts the resolver process and waits until it serves (its sockets bound). */
  static async open(opts: ResolverProcessOptions): Promise<ResolverProcess> {
    const resolver = new ResolverProcess(opts);
    await resolver.spawn();
    return resolver;
  }

  /** The resolver process's pid while one runs (tests kill it to see it come back). */
  get pid(): number | undefined {
    const child = this.child;
    return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
  }

  /** Puts a machine's current state in the table; a destroyed machine, or one of no known org, leaves it. */
  update(m: ExistingMachine, org: string | undefined): void {
    if (m.status === "destroyed" || org === undefined) this.remove(m.app, m.machineId);
    else this.upsert(dnsMachineOf(m, org));
  }

  /** Adds or replaces one machine's record. */
  upsert(m: DnsMachine): void {
    this.records.set(`${m.app}\n${m.id}`, m);
    this.send({ t: "upsert", m });
  }

  /** Removes one machine's record. */
  remove(app: string, id: string): void {
    if (this.records.delete(`${app}\n${id}`)) this.send({ t: "remove", app, id });
  }

  /** Resolves once the resolver process has applied everything sent before. */
  sync(): Promise<void> {
    const n = ++this.syncs;
    return new Promise((resolve) => {
      this.waiting.set(n, resolve);
      this.send({ t: "sync", n });
    });
  }

  /** Stops the resolver process (its sockets close with it). */
  async close(): Promise<void> {
    this.closing = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.disconnect?.();
    await exited;
  }

  private send(c: ResolverCommand): void {
    // A process being replaced gets the whole table when it starts.
    if (this.child?.connected) this.child.send(c);
  }

  private spawn(): Promise<void> {
    const { logger, ...options } = this.opts;
    const main = fileURLToPath(new URL(`./resolver-main${extname(import.meta.url)}`, import.meta.url));
    // From source (tests, npm start) the process needs the loader the agent runs under.
    const loader = main.endsWith(".ts")
      ? ["--conditions=source", "--import", import.meta.resolve("tsx")]
      : [];
    const child = spawn(
      process.execPath,
      [...loader, main, JSON.stringify({ ...options, logLevel: logger.level })],
      { stdio: ["ignore", "inherit", "inherit", "ipc"] },
    );
    this.child = child;
    // Ahead of the host's other work (machines, builds, the agent's own): a lookup waits on it.
    if (child.pid !== undefined) {
      try {
        setPriority(child.pid, RESOLVER_PRIORITY);
      } catch (err) {
        logger.debug({ err }, "the DNS resolver runs at the normal priority (raising it needs CAP_SYS_NICE)");
      }
    }
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`the DNS resolver process did not start within ${READY_TIMEOUT_MS / 1000} s`));
      }, READY_TIMEOUT_MS);
      child.on("message", (reply: ResolverReply) => {
        if (reply.t === "ready") {
          clearTimeout(timer);
          for (const m of this.records.values()) child.send({ t: "upsert", m } satisfies ResolverCommand);
          // Syncs sent to a process that died are asked again of this one, after the whole table.
          for (const n of this.waiting.keys()) child.send({ t: "sync", n } satisfies ResolverCommand);
          resolve();
        } else if (reply.t === "error") {
          clearTimeout(timer);
          reject(new Error(`cannot start the internal DNS resolver: ${reply.message}`));
        } else {
          this.waiting.get(reply.n)?.();
          this.waiting.delete(reply.n);
        }
      });
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the DNS resolver process exited (${signal ?? `code ${code}`}) before serving`));
        if (this.closing || this.child !== child) return;
        logger.warn({ code, signal }, "the DNS resolver process died; starting it again");
        setTimeout(() => {
          if (!this.closing)
            this.spawn().catch((err: unknown) =>
              logger.warn({ err }, "the DNS resolver process did not start"),
            );
        }, RESPAWN_DELAY_MS).unref();
      });
    });
  }
}

/** The extension of this module's file: .ts from source, .js from dist, .mjs from a bundle (scripts/bundle.ts). */
function extname(url: string): string {
  return extnameOf(new URL(url).pathname);
}
