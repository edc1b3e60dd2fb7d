import { pgClusterNameProblem } from "@hangar/domain/pgcluster-names";
import { type Command, InvalidArgumentError } from "commander";
import { type Context, printJson } from "../context.js";
import { waitTimeoutOption } from "../options.js";
import { formatTable } from "../table.js";
import { clusterOf, followCreate, onCluster, type PgCluster, path } from "./postgres.js";

/** One base backup, as `GET /v1/postgres/{name}/backups` lists them. */
export interface PgBackup {
  id: string;
  status: "running" | "completed" | "failed";
  member_id: string;
  started_at: string;
  finished_at: string | null;
  start_lsn: string | null;
  timeline: number | null;
  size: number | null;
  stored_size: number | null;
  sha256: string | null;
  error: string | null;
}

/** A base backup streams the whole database into the object store: the API gives it an hour. */
const BACKUP_REQUEST_MS = 61 * 60_000;
/** A restore's request answers 202 after a short wait; the CLI then follows the new cluster. */
const RESTORE_REQUEST_MS = 60_000;

/** An RFC 3339 time with a zone (what the API takes), refused before any call otherwise. */
export function restoreTime(value: string): string {
  if (
    !/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(value) ||
    Number.isNaN(Date.parse(value))
  )
    throw new InvalidArgumentError("expected an RFC 3339 time with a zone, e.g. 2026-12-05T11:30:00Z");
  return value;
}

function newClusterName(value: string): string {
  const problem = pgClusterNameProblem(value);
  if (problem) throw new InvalidArgumentError(problem);
  return value;
}

function megabytes(bytes: number | null): string {
  return bytes === null ? "-" : `${(bytes / 1_048_576).toFixed(1)}MB`;
}

/** The table of `hangar postgres backup list`, newest first as the API answers. */
export function backupsTable(backups: readonly PgBackup[]): string {
  return formatTable(
    ["ID", "STATUS", "STARTED", "FINISHED", "SIZE", "STORED", "START LSN", "TIMELINE"],
    backups.map((b) => [
      b.id,
      b.status === "failed" && b.error ? `failed: ${b.error.slice(0, 60)}` : b.status,
      b.started_at,
      b.finished_at ?? "-",
      megabytes(b.size),
      megabytes(b.stored_size),
      b.start_lsn ?? "-",
      b.timeline === null ? "-" : String(b.timeline),
    ]),
  );
}

/**
 * `hangar postgres backup create|list -a <db>` and `backup restore <db> --time <ts> --name <new>`:
 * base backups of the primary into the platform's object store (WAL is archived continuously), and
 * a point-in-time restore into a new cluster of the same org.
 */
export function registerPostgresBackup(pg: Command, ctx: Context): void {
  const backup = pg.command("backup").description("base backups and point-in-time restores of a cluster");

  backup
    .command("create")
    .description("take a base backup of the cluster's primary now (WAL is archived continuously)")
    .option("-a, --app <name>", "the cluster (default: `app` in hangar.toml or fly.toml here)")
    .option("--json", "print the backup as JSON")
    .action(async (flags: { app?: string; json?: boolean }) => {
      const cluster = await clusterOf(ctx, flags);
      const api = await ctx.api();
      if (!flags.json) ctx.out(`Taking a base backup of ${cluster}'s primary...\n`);
      const b = await onCluster(cluster, () =>
        api.request<PgBackup>("POST", path(cluster, "backups"), { timeoutMs: BACKUP_REQUEST_MS }),
      );
      if (flags.json) return printJson(ctx, b);
      ctx.out(
        `Base backup ${b.id} of ${cluster} stored: ${megabytes(b.size)} (${megabytes(b.stored_size)} compressed), ` +
          `from ${b.start_lsn} on timeline ${b.timeline}\n`,
      );
    });

  backup
    .command("list")
    .description("list the cluster's base backups, newest first")
    .option("-a, --app <name>", "the cluster (default: `app` in hangar.toml or fly.toml here)")
    .option("--json", "print the API's JSON")
    .action(async (flags: { app?: string; json?: boolean }) => {
      const cluster = await clusterOf(ctx, flags);
      const api = await ctx.api();
      const { backups } = await onCluster(cluster, () =>
        api.request<{ backups: PgBackup[] }>("GET", path(cluster, "backups")),
      );
      if (flags.json) return printJson(ctx, backups);
      if (backups.length === 0)
        return ctx.out(
          `No backups of ${cluster}: take one with \`hangar postgres backup create -a ${cluster}\`\n`,
        );
      ctx.out(backupsTable(backups));
    });

  backup
    .command("restore")
    .argument("<cluster>", "the cluster whose backups are restored", newClusterName)
    .description("restore a cluster's backups and WAL into a new cluster, at a point in time")
    .requiredOption("--name <name>", "the new cluster's name", newClusterName)
    .option("--time <time>", "RFC 3339 time to recover to (default: the latest archived commit)", restoreTime)
    .option("--json", "print the new cluster as JSON (progress on stderr)")
    .addOption(waitTimeoutOption(900, "15m", "the restored cluster to be ready"))
    .action(
      async (source: string, flags: { name: string; time?: string; json?: boolean; waitTimeout: number }) => {
        const api = await ctx.api();
        const progress = flags.json ? ctx.err : ctx.out;
        progress(
          `Restoring ${source} into a new cluster ${flags.name}${flags.time ? ` at ${flags.time}` : ""}\n`,
        );
        const res = await onCluster(source, () =>
          api.send("POST", path(source, "backups/restore"), {
            body: JSON.stringify({ name: flags.name, ...(flags.time ? { time: flags.time } : {}) }),
            headers: { "content-type": "application/json" },
            timeoutMs: RESTORE_REQUEST_MS,
          }),
        );
        const answered = (await res.json()) as PgCluster;
        const cluster =
          res.status === 202
            ? await followCreate(api, flags.name, flags.waitTimeout * 1000, progress)
            : answered;
        if (flags.json) return printJson(ctx, cluster);
        ctx.out(
          `\nPostgres cluster ${cluster.name} is ready, restored from ${source}` +
            `${flags.time ? ` at ${flags.time}` : ""} (primary ${cluster.primary_id}, timeline ${cluster.timeline})\n` +
            `Attach an app: hangar postgres attach ${cluster.name} -a <app>\n`,
        );
      },
    );
}
