import { existsSync, readFileSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDatabase } from "./database.js";
import { ServerStartError } from "./errors.js";
import { cleanupOnExit } from "./exit-cleanup.js";
import { logTail } from "./log-tail.js";
import { pgTools } from "./pg-tools.js";
import { poll } from "./poll.js";
import { freePort } from "./ports.js";

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust auth, no password). */
  url: string;
  port: number;
  dataDir: string;
  /** Fast shutdown, then remove the temp dirs this server created. Idempotent. */
  stop(): Promise<void>;
  /** Creates a database and returns its connection URL. */
  createDatabase(name: string): Promise<string>;
}

export interface PostgresOptions {
  /** Reuse (or initialise) this data dir, with durability defaults; default: a throwaway temp dir. */
  dataDir?: string;
  /** Default: a free port. */
  port?: number;
}

const READY_TIMEOUT_MS = 30_000;

/** Starts a PostgreSQL server on 127.0.0.1 and resolves once it accepts connections. */
export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  const tools = await pgTools();
  const throwaway = opts.dataDir === undefined;
  const socketDir = await mkdtemp(join(tmpdir(), "hangar-pg-socket-"));
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), "hangar-pg-data-")));
  const logPath = join(dataDir, "server.log");
  const tempDirs = throwaway ? [socketDir, dataDir] : [socketDir];

  let pid: number | undefined;
  const forgetExitCleanup = cleanupOnExit(() => {
    // SIGQUIT is Postgres' immediate shutdown: the postmaster takes its backends down with it.
    if (pid !== undefined) process.kill(pid, "SIGQUIT");
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      try {
        await tools.run("pg_ctl", ["-D", dataDir, "-m", "fast", "-w", "stop"], socketDir);
      } catch (error) {
        // pg_ctl also fails when there is nothing to stop (never started, already gone).
        if (postmasterRunning(dataDir)) throw error;
      }
      await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
      forgetExitCleanup();
    })();
    return stopping;
  };

  try {
    await tools.own(socketDir);
    if (!existsSync(join(dataDir, "PG_VERSION"))) {
      await mkdir(dataDir, { recursive: true });
      await tools.own(dataDir);
      // The C locale exists everywhere; the host's LANG may name one that is not installed.
      const initdbArgs = ["-D", dataDir, "--auth=trust", "-U", "postgres", "-E", "UTF8", "--locale=C"];
      await tools.run("initdb", throwaway ? [...initdbArgs, "--no-sync"] : initdbArgs, socketDir);
    }
    const port = opts.port ?? (await freePort());
    const serverArgs = serverOptions(port, socketDir, !throwaway);
    await tools.run("pg_ctl", ["-D", dataDir, "-w", "-l", logPath, "-o", serverArgs, "start"], socketDir);
    pid = postmasterPid(dataDir);
    const readyArgs = ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "postgres", "-t", "1"];
    await poll(
      () =>
        tools.run("pg_isready", readyArgs, socketDir).then(
          () => true,
          () => undefined,
        ),
      {
        what: `postgres to accept connections on port ${port}`,
        timeoutMs: READY_TIMEOUT_MS,
        intervalMs: 100,
      },
    );

    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    return { url, port, dataDir, stop, createDatabase: (name) => createDatabase(url, name) };
  } catch (error) {
    // Read before stop() deletes a throwaway data dir, log included.
    const log = existsSync(logPath) ? `\n${await logTail(logPath)}` : "";
    // The start failure is the error worth reporting; the exit cleanup still covers a server that won't stop.
    await stop().catch(() => undefined);
    throw new ServerStartError("postgres", `postgres did not start: ${(error as Error).message}${log}`, {
      cause: error,
    });
  }
}

function serverOptions(port: number, socketDir: string, durable: boolean): string {
  // pg_ctl hands these to a shell, hence the quoting.
  const options = [
    `-p ${port}`,
    "-c listen_addresses=127.0.0.1",
    `-k '${socketDir.replaceAll("'", `'\\''`)}'`,
  ];
  // A throwaway cluster trades crash safety for speed; a caller's data dir keeps the defaults.
  if (!durable) options.push("-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off");
  return options.join(" ");
}

/** The postmaster's pid, from the first line of postmaster.pid. */
function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n", 1)[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function postmasterRunning(dataDir: string): boolean {
  const pid = postmasterPid(dataDir);
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, but owned by the postgres user we are not.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
