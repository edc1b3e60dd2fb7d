// A Postgres 15 "somewhere on the internet" for `hangar postgres import`: started inside the test
// topology's internet namespace, listening on its address (198.51.100.1), which machines reach as any
// outside address (forwarded, masqueraded by their host; docs/networking.md). The test reaches it over
// its unix socket, which is a file and so crosses network namespaces.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { findBinary } from "@hangar/testkit";
import pg from "pg";

const PORT = 5432;
/** Postgres runs as this OS user (it refuses root). */
const SERVER_USER = "postgres";

/** A running source server. */
export interface SourcePostgres {
  /** A connection over the unix socket as the superuser, to database `database`. */
  client(database: string): pg.Client;
  /** postgres://<user>:<password>@<address>:5432/<database>, as a machine reaches it. */
  url(user: string, password: string, database: string): string;
  stop(): Promise<void>;
}

/** Starts a throwaway Postgres in network namespace `netns`, on `address`:5432 with password logins. */
export async function startSourcePostgres(netns: string, address: string): Promise<SourcePostgres> {
  const dataDir = mkdtempSync(join(tmpdir(), "hangar-import-source-"));
  const socketDir = mkdtempSync(join(tmpdir(), "hangar-import-socket-"));
  const uid = Number(execFileSync("id", ["-u", SERVER_USER], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", SERVER_USER], { encoding: "utf8" }).trim());
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child?.once("exit", resolve));
      // SIGINT: Postgres' fast shutdown.
      child.kill("SIGINT");
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(socketDir, { recursive: true, force: true });
  };
  try {
    chownSync(dataDir, uid, gid);
    chownSync(socketDir, uid, gid);
    const asServer = ["--reuid", String(uid), "--regid", String(gid), "--init-groups", "--"];
    execFileSync(
      "setpriv",
      [
        ...asServer,
        findBinary("initdb"),
        "-D",
        dataDir,
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
      ],
      { stdio: "pipe" },
    );
    writeFileSync(
      join(dataDir, "pg_hba.conf"),
      "local all all trust\nhost all all 0.0.0.0/0 scram-sha-256\n",
    );
    const server = [
      findBinary("postgres"),
      ...["-D", dataDir, "-k", socketDir, "-p", String(PORT), "-c", `listen_addresses=${address}`],
      ...["-c", "fsync=off", "-c", "shared_buffers=16MB", "-c", "max_connections=30"],
    ];
    child = spawn("ip", ["netns", "exec", netns, "setpriv", ...asServer, ...server], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      log = (log + d).slice(-4000);
    });
    const client = (database: string) =>
      new pg.Client({ host: socketDir, port: PORT, user: "postgres", database });
    for (let tries = 0; ; tries++) {
      const c = client("postgres");
      try {
        await c.connect();
        await c.end();
        break;
      } catch (err) {
        await c.end().catch(() => undefined);
        if (child.exitCode !== null || tries > 100)
          throw new Error(`source postgres did not start: ${err}\n${log}`);
        await sleep(200);
      }
    }
    return {
      client,
      url: (user, password, database) =>
        `postgres://${user}:${encodeURIComponent(password)}@${address}:${PORT}/${database}`,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
