import { chown } from "node:fs/promises";
import { findBinary } from "./binaries.js";
import { runCommand } from "./command.js";
import { MissingSystemUserError } from "./errors.js";

export type PgTool = "initdb" | "pg_ctl" | "pg_isready";

export interface PgTools {
  /** Runs a PostgreSQL tool and returns its stdout. */
  run(tool: PgTool, args: readonly string[], cwd: string): Promise<string>;
  /** Hands a directory to the user the server runs as. */
  own(dir: string): Promise<void>;
}

// Postgres refuses to run as root; Debian's package creates this user for it.
const SERVER_USER = "postgres";

/** Resolves the PostgreSQL tools, run as the `postgres` system user when we are root. */
export async function pgTools(): Promise<PgTools> {
  const binaries: Record<PgTool, string> = {
    initdb: findBinary("initdb"),
    pg_ctl: findBinary("pg_ctl"),
    pg_isready: findBinary("pg_isready"),
  };
  if (process.getuid?.() !== 0) {
    return {
      run: (tool, args, cwd) => runCommand(binaries[tool], args, cwd),
      // The server runs as us, so our directories are already its own.
      own: async () => {},
    };
  }

  const runuser = findBinary("runuser");
  const { uid, gid } = await systemUser(SERVER_USER);
  return {
    run: (tool, args, cwd) => runCommand(runuser, ["-u", SERVER_USER, "--", binaries[tool], ...args], cwd),
    own: (dir) => chown(dir, uid, gid),
  };
}

async function systemUser(name: string): Promise<{ uid: number; gid: number }> {
  try {
    const [uid, gid] = await Promise.all([runCommand("id", ["-u", name]), runCommand("id", ["-g", name])]);
    return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
  } catch (cause) {
    throw new MissingSystemUserError(name, { cause });
  }
}
