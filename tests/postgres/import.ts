// What the import test (acceptance 6) needs beside the cluster: a separate Postgres with a schema and
// rows where machines reach it, the cluster app's live machines and secret names through the API,
// and the CLI run with something on its stdin (`echo 'select ...' | hangar postgres connect`).
import { spawn } from "node:child_process";
import { type CliResult, hangarArgv } from "../../cli/test/run-cli.js";
import type { PgPlatform } from "./cluster.js";
import { startSourcePostgres } from "./source-postgres.js";

/** The source database as the test made it. */
export interface ImportSource {
  /** postgres://shopper:<password>@198.51.100.1:5432/<database>. */
  url(database: string): string;
  password: string;
  /** sum(price) of its 42 rows, as psql prints it. */
  total: string;
}

const USER = "shopper";
const PASSWORD = "shop-source-pw-5x";
const ROWS = 42;

/**
 * Runs `fn` with a Postgres started in the platform topology's internet namespace (198.51.100.1),
 * holding database shop: table items (serial key, unique name, price) with 42 rows, owned by a user
 * that logs in with a password. Stopped afterwards, also on failure.
 */
export async function importFromOutside(
  pp: PgPlatform,
  fn: (source: ImportSource) => Promise<void>,
): Promise<void> {
  const { netns, ip } = pp.p.topology.internet;
  const server = await startSourcePostgres(netns, ip);
  try {
    const admin = server.client("postgres");
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE ${USER} LOGIN PASSWORD '${PASSWORD}'`);
      await admin.query(`CREATE DATABASE shop OWNER ${USER}`);
    } finally {
      await admin.end();
    }
    const shop = server.client("shop");
    await shop.connect();
    let total: string;
    try {
      await shop.query(`SET ROLE ${USER}`);
      await shop.query(
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL UNIQUE, price numeric(8,2) NOT NULL)",
      );
      await shop.query(
        `INSERT INTO items (name, price) SELECT 'item ' || i, i * 1.25 FROM generate_series(1, ${ROWS}) i`,
      );
      total = (await shop.query<{ total: string }>("SELECT sum(price)::text AS total FROM items")).rows[0]
        ?.total as string;
    } finally {
      await shop.end();
    }
    await fn({ url: (database) => server.url(USER, PASSWORD, database), password: PASSWORD, total });
  } finally {
    await server.stop();
  }
}

/** The ids of the app's machines that are not destroyed, sorted. */
export async function liveMachineIds(pp: PgPlatform, app: string): Promise<string[]> {
  const machines = await pp.p.api.ok<{ id: string; state: string }[]>("GET", `/apps/${app}/machines`);
  return machines
    .filter((m) => m.state !== "destroyed")
    .map((m) => m.id)
    .sort();
}

/** The names of the app's secrets. */
export async function secretNames(pp: PgPlatform, app: string): Promise<string[]> {
  const { secrets } = await pp.p.api.ok<{ secrets: { name: string }[] }>("GET", `/apps/${app}/secrets`);
  return secrets.map((s) => s.name);
}

/** `printf '%s\n' <input> | hangar <args>` against the platform, as a shell pipeline runs it. */
export function hangarInput(
  pp: PgPlatform,
  args: string[],
  input: string,
  timeoutMs = 60_000,
): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith("HANGAR_")) delete env[key];
  const child = spawn("sh", ["-c", `printf '%s\\n' "$0" | "$@"`, input, ...hangarArgv(args)], {
    cwd: pp.work,
    env: { ...env, HANGAR_HOME: pp.p.home },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group: a timeout kills the pipeline and the CLI with it.
    detached: true,
  });
  const result: CliResult = { code: null, stdout: "", stderr: "" };
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    result.stdout += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    result.stderr += d;
  });
  const timer = setTimeout(() => {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
  }, timeoutMs);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      result.code = code;
      resolve(result);
    });
  });
}
