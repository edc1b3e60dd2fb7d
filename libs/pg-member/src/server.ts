import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { passwdEntry } from "./logic.js";
import type { MemberSettings } from "./settings.js";

/** One JSON log line on stderr (the machine's log); never given a password. */
export function log(msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), msg, ...fields })}\n`);
}

/** A PostgreSQL tool that failed: its name and the end of what it printed. */
export class ToolError extends Error {}

/** How long the agent waits for its own postgres on one status query: status never hangs on it. */
const QUERY_TIMEOUT_MS = 300;

/**
 * The member's postgres: started as the OS user (postgres refuses root), restarted when it dies on
 * its own (each crash logged), stopped with a fast shutdown; the PostgreSQL tools run as that user
 * too; SQL through one connection of the agent's (as `postgres` over TCP with the operator password).
 */
export class PostgresProcess {
  private child: ChildProcess | undefined;
  private wanted = false;
  private exited: Promise<void> = Promise.resolve();
  private connections: pg.Pool | undefined;
  /** Crashes (exits nobody asked for) since the agent started. */
  crashes = 0;
  private readonly ids: { uid: number; gid: number } | undefined;

  constructor(private readonly s: MemberSettings) {
    this.ids = osUserIds(s.osUser);
  }

  /** The uid and gid files and folders of postgres get (undefined: the agent's own). */
  get owner(): { uid: number; gid: number } | undefined {
    return this.ids;
  }

  /** Whether a postmaster of ours runs. */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts postgres (and keeps it running until stop()); resolves once it accepts connections. */
  async start(): Promise<void> {
    this.wanted = true;
    if (!this.running) this.launch();
    await this.ready(60_000);
  }

  private launch(): void {
    const child = spawn(join(this.s.binDir, "postgres"), ["-D", this.s.dataDir], {
      ...(this.ids ?? {}),
      env: this.toolEnv(),
      stdio: ["ignore", "inherit", "inherit"],
    });
    this.child = child;
    log("postgres started", { pid: child.pid });
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.dropConnections();
        if (this.wanted) {
          this.crashes++;
          log("postgres exited unexpectedly; restarting it", { code, signal, crashes: this.crashes });
          // A second after a crash: a postgres that dies at once does not spin the CPU.
          setTimeout(() => {
            if (this.wanted && this.child === child) this.launch();
          }, 1_000).unref();
        } else {
          log("postgres stopped", { code, signal });
        }
        resolve();
      });
    });
  }

  /** Fast shutdown (SIGINT: active transactions roll back, a shutdown checkpoint) and waits for the exit. */
  async stop(): Promise<void> {
    this.wanted = false;
    this.dropConnections();
    if (this.running) this.child?.kill("SIGINT");
    await this.exited;
  }

  /** Tells postgres to read its configuration again (SIGHUP to the postmaster). */
  reload(): void {
    if (this.running) this.child?.kill("SIGHUP");
  }

  /** Waits until postgres answers SQL, or throws after `timeoutMs`. */
  async ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running && !this.wanted) throw new ToolError("postgres is not running");
      try {
        await this.query("SELECT 1", [], 2_000);
        return;
      } catch (error) {
        if (Date.now() > deadline)
          throw new ToolError(
            `postgres did not accept connections within ${timeoutMs} ms: ${(error as Error).message}`,
          );
      }
      await sleep(100);
    }
  }

  /** Runs one query on one of the agent's connections; one slower than `timeoutMs` is dropped with its connection. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values: unknown[] = [],
    timeoutMs = QUERY_TIMEOUT_MS,
  ): Promise<R[]> {
    const pool = this.pool();
    const connecting = pool.connect();
    const client = await withTimeout(connecting, timeoutMs, "connecting to postgres").catch(
      (error: unknown) => {
        // A connection that arrives after the wait goes back to the pool for the next query: on a
        // loaded host, closing every late one meant no query ever found a connection in time.
        connecting.then(
          (late) => late.release(),
          () => undefined,
        );
        throw error;
      },
    );
    const running = client.query<R>(text, values);
    // The connection goes back when its query ends, however late: a slow answer is not a broken
    // connection, and a postgres that hangs holds at most the pool's few connections.
    running.then(
      () => client.release(),
      (error: unknown) => client.release(error instanceof pg.DatabaseError ? undefined : (error as Error)),
    );
    const res = await withTimeout(running, timeoutMs, "a query");
    return res.rows;
  }

  private pool(): pg.Pool {
    if (this.connections === undefined) {
      this.connections = new pg.Pool({
        host: localAddress(this.s.listen),
        port: this.s.pgPort,
        user: "postgres",
        password: this.s.operatorPassword,
        database: "postgres",
        application_name: "hangar-member-agent",
        max: 4,
        idleTimeoutMillis: 10_000,
        connectionTimeoutMillis: 5_000,
      });
      // An idle connection that postgres closes (a restart, a fence) is simply dropped.
      this.connections.on("error", () => undefined);
      // So does a checked-out one (a postmaster that died mid-query): its query fails, nothing else.
      this.connections.on("connect", (client) => client.on("error", () => undefined));
    }
    return this.connections;
  }

  /** Closes the agent's own connections (a fence terminated them): the next query opens a fresh one. */
  resetConnections(): void {
    this.dropConnections();
  }

  private dropConnections(): void {
    const pool = this.connections;
    this.connections = undefined;
    pool?.end().catch(() => undefined);
  }

  /** Runs a PostgreSQL tool of binDir as the OS user; `env` adds variables (PGPASSWORD). Throws ToolError. */
  runTool(
    tool: string,
    args: string[],
    env: Record<string, string> = {},
    timeoutMs = 300_000,
  ): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(join(this.s.binDir, tool), args, {
        ...(this.ids ?? {}),
        cwd: "/",
        env: { ...this.toolEnv(), ...env },
        stdio: ["ignore", "pipe", "pipe"],
        timeout: timeoutMs,
      });
      let output = "";
      child.stdout?.on("data", (b: Buffer) => (output += b.toString()));
      child.stderr?.on("data", (b: Buffer) => (output += b.toString()));
      child.once("error", (error) => reject(new ToolError(`${tool}: ${error.message}`)));
      child.once("close", (code, signal) => {
        if (code === 0) resolve(output);
        else
          reject(new ToolError(`${tool} failed (${signal ?? `exit ${code}`}): ${output.trim().slice(-800)}`));
      });
    });
  }

  private toolEnv(): Record<string, string> {
    // The agent's secrets stay out of postgres' environment: only what the tools need.
    return { PATH: `${this.s.binDir}:/usr/bin:/bin`, LANG: "C.UTF-8", HOME: "/tmp", TZ: "UTC" };
  }
}

/** The address the agent reaches its own postgres at: loopback when postgres listens on every address. */
export function localAddress(listen: string): string {
  return listen === "::" || listen === "0.0.0.0" ? "127.0.0.1" : listen;
}

function osUserIds(user: string): { uid: number; gid: number } | undefined {
  // Only root can (and must) switch: postgres refuses to run as root.
  if (process.getuid?.() !== 0) return undefined;
  const entry = passwdEntry(readFileSync("/etc/passwd", "utf8"), user);
  if (entry === undefined) throw new ToolError(`there is no OS user ${user} to run postgres as`);
  return entry;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ToolError(`${what} took longer than ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
