import { existsSync, readFileSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, escapeLiteral } from "pg";
import { createDatabase } from "./database.js";
import { ServerStartError } from "./errors.js";
import { cleanupOnExit } from "./exit-cleanup.js";
import { logTail } from "./log-tail.js";
import { pgTools } from "./pg-tools.js";
import { poll } from "./poll.js";
import { freePort } from "./ports.js";

export interface PostgresServer {
  /** postgres://postgres[:<password>]@127.0.0.1:<port>/postgres (trust auth when no password was asked for). */
  url: string;
  port: number;
  dataDir: string;
  /** The postmaster's current process id; changes on restart(). */
  readonly pid: number | undefined;
  /** Fast shutdown, then remove the temp dirs this server created. Idempotent. */
  stop(): Promise<void>;
  /** Creates a database and returns its connection URL. */
  createDatabase(name: string): Promise<string>;
  /**
   * Resolves once the current postmaster is gone. pg_ctl runs it as a daemon, not our child, so
   * how it ended (exit code or signal) is not known here: the server log says.
   */
  exited(): Promise<string>;
  /** Starts the server again on the same port and data dir (stopping what is left of it first). */
  restart(): Promise<void>;
}

export interface PostgresOptions {
  /** Reuse (or initialise) this data dir, with durability defaults; default: a throwaway temp dir. */
  dataDir?: string;
  /** Default: a free port. */
  port?: number;
  /**
   * Require this password (scram-sha-256) for every TCP connection, for the `postgres` user.
   * Default: none, and TCP connections are trusted (fine for a throwaway test cluster).
   */
  password?: string;
}

const READY_TIMEOUT_MS = 30_000;
const EXIT_POLL_MS = 250;

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
    if (opts.password !== undefined) await requirePasswords(dataDir);
    const serverArgs = serverOptions(port, socketDir, !throwaway);
    const readyArgs = ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "postgres", "-t", "1"];
    const launch = async () => {
      await tools.run("pg_ctl", ["-D", dataDir, "-w", "-l", logPath, "-o", serverArgs, "start"], socketDir);
      pid = postmasterPid(dataDir);
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
    };
    await launch();
    if (opts.password !== undefined) await setPassword(socketDir, port, opts.password);

    const credentials = opts.password === undefined ? "" : `:${encodeURIComponent(opts.password)}`;
    const url = `postgres://postgres${credentials}@127.0.0.1:${port}/postgres`;
    return {
      url,
      port,
      dataDir,
      get pid() {
        return pid;
      },
      stop,
      createDatabase: (name) => createDatabase(url, name),
      async exited() {
        const watched = pid;
        while (watched !== undefined && processAlive(watched)) await sleep(EXIT_POLL_MS);
        return `postmaster pid ${watched} is gone; its log: ${logPath}`;
      },
      async restart() {
        if (stopping !== undefined) {
          throw new ServerStartError("postgres", "restart() after stop(): start a new server");
        }
        // After a crash the postmaster's backends may still be on their way out; a fast stop
        // takes down whatever is left, and fails harmlessly when nothing is.
        await tools
          .run("pg_ctl", ["-D", dataDir, "-m", "fast", "-w", "stop"], socketDir)
          .catch(() => undefined);
        await launch();
      },
    };
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
  return pid !== undefined && processAlive(pid);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, but owned by the postgres user we are not.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * TCP connections need the password (scram-sha-256). The Unix socket stays trusted: it lives in a
 * private temp dir that only the server's user (and root) can enter, and the tools use it.
 */
async function requirePasswords(dataDir: string): Promise<void> {
  const hba = [
    "# Written by @hangar/testkit's startPostgres({ password }).",
    "local all all trust",
    "host all all 127.0.0.1/32 scram-sha-256",
    "host all all ::1/128 scram-sha-256",
  ];
  await writeFile(join(dataDir, "pg_hba.conf"), `${hba.join("\n")}\n`);
}

/** Sets the `postgres` user's password over the trusted Unix socket. */
async function setPassword(socketDir: string, port: number, password: string): Promise<void> {
  const client = new Client({ host: socketDir, port, user: "postgres", database: "postgres" });
  await client.connect();
  try {
    // ALTER ROLE takes no bind parameters, hence the literal.
    await client.query("SET password_encryption = 'scram-sha-256'");
    // A throwaway cluster commits asynchronously; the password must outlive a crash all the same.
    await client.query("SET synchronous_commit = on");
    await client.query(`ALTER ROLE postgres PASSWORD ${escapeLiteral(password)}`);
  } finally {
    await client.end();
  }
}
