import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import { CliError } from "../cli-error.js";
import { type Context, printJson } from "../context.js";
import { formatLogEntry } from "../logs.js";
import { clusterOf, onCluster, type PgCluster, path as pgPath } from "./postgres.js";

/** What `POST /v1/postgres/{name}/import` answers once the importer has ended. */
export interface ImportResult {
  cluster: string;
  database: string;
  machine_id: string;
  exit_code: number | null;
  log_tail: string[];
  duration_ms: number;
}

interface ImportFlags {
  app?: string;
  clean?: boolean;
  dataOnly?: boolean;
  schemaOnly?: boolean;
  json?: boolean;
}

/** The manager gives an import an hour; the answer comes once it ended. */
const IMPORT_REQUEST_MS = 62 * 60_000;
/** Lines printed just before the importer exited may reach the log stream after the answer. */
const LATE_LINES_MS = 1_000;

/** Why a source URL is refused before any call, or undefined (the manager checks it again). */
export function sourceUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "the source is not a URL: expected postgres://<user>:<password>@<host>[:<port>]/<database>";
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:")
    return "the source must be a postgres:// or postgresql:// URL";
  if (url.hostname === "") return "the source URL names no host";
  return undefined;
}

/** The summary line of an import. */
export function importSummary(r: ImportResult): string {
  const took = `${(r.duration_ms / 1000).toFixed(1)}s`;
  return r.exit_code === 0
    ? `Imported database ${r.database} into cluster ${r.cluster} in ${took}\n`
    : `Import into cluster ${r.cluster} failed (importer exit code ${r.exit_code ?? "unknown"}) after ${took}\n`;
}

/**
 * `hangar postgres import <source-url> -a <db>`: the manager runs pg_dump | pg_restore in a temporary
 * machine of the cluster's app while the CLI follows that app's log and prints the lines of machines
 * that are not members (the importer's) as they come; then the summary, or with --json the result.
 */
async function runImport(ctx: Context, sourceUrl: string, flags: ImportFlags): Promise<void> {
  const problem = sourceUrlProblem(sourceUrl);
  if (problem)
    throw new CliError(
      problem,
      "give the source database's URL, e.g. postgres://user:pass@db.example.com:5432/shop",
    );
  if (flags.dataOnly && flags.schemaOnly)
    throw new CliError("--data-only and --schema-only exclude each other", "give at most one of them");
  const cluster = await clusterOf(ctx, flags);
  const api = await ctx.api();
  const status = await onCluster(cluster, () => api.request<PgCluster>("GET", pgPath(cluster)));
  const members = new Set(status.members.map((m) => m.id));
  const stop = new AbortController();
  const follow = flags.json
    ? Promise.resolve()
    : (async () => {
        try {
          for await (const entry of api.appLogs(cluster, { follow: true, signal: stop.signal })) {
            if (!members.has(entry.instance)) ctx.out(`${formatLogEntry(entry)}\n`);
          }
        } catch (err) {
          if (!stop.signal.aborted)
            ctx.err(`(the importer's log could not be followed: ${(err as Error).message})\n`);
        }
      })();
  let result: ImportResult;
  try {
    if (!flags.json)
      ctx.out(`Importing into cluster ${cluster}: pg_dump | pg_restore in a temporary machine\n`);
    result = await onCluster(cluster, () =>
      api.request<ImportResult>("POST", pgPath(cluster, "import"), {
        body: {
          source_url: sourceUrl,
          ...(flags.clean ? { clean: true } : {}),
          ...(flags.dataOnly ? { data_only: true } : {}),
          ...(flags.schemaOnly ? { schema_only: true } : {}),
        },
        timeoutMs: IMPORT_REQUEST_MS,
      }),
    );
    if (!flags.json) await sleep(LATE_LINES_MS);
  } finally {
    stop.abort();
    await follow;
  }
  if (flags.json) printJson(ctx, result);
  else ctx.out(importSummary(result));
  if (result.exit_code !== 0) {
    throw new CliError(
      `the import into ${cluster} failed: ${result.log_tail.at(-1) ?? "no output"}`,
      "check the source URL and that the source server accepts connections from the platform's machines",
    );
  }
}

/** Registers `import` under `hangar postgres`. */
export function registerPostgresImport(pg: Command, ctx: Context): void {
  pg.command("import")
    .argument("<source-url>", "the database to copy: postgres://<user>:<password>@<host>[:<port>]/<database>")
    .description(
      "copy a database into the cluster (pg_dump | pg_restore in a temporary machine), into the database of the same name",
    )
    .option("-a, --app <name>", "the cluster (default: `app` in hangar.toml or fly.toml here)")
    .option("--clean", "drop the source's objects in the cluster before making them again")
    .option("--data-only", "copy rows only")
    .option("--schema-only", "copy definitions only")
    .option("--json", "print the result as JSON (without the importer's lines)")
    .action((sourceUrl: string, flags: ImportFlags) => runImport(ctx, sourceUrl, flags));
}
