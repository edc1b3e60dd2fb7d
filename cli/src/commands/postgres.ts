import { CPU_VM_SIZES } from "@hangar/config";
import {
  pgClusterNameProblem,
  pgClusterSizeProblem,
  pgIdentifierProblem,
} from "@hangar/domain/pgcluster-names";
import { type Command, InvalidArgumentError, Option } from "commander";
import { type ApiClient, ApiError } from "../api.js";
import { loadAppConfig, resolveAppName } from "../app-config.js";
import { CliError, ExitStatus } from "../cli-error.js";
import { type Context, printJson } from "../context.js";
import { positiveInt, waitTimeoutOption } from "../options.js";
import { formatTable } from "../table.js";
import { runConsoleSession } from "../tunnel.js";
import { registerPostgresBackup } from "./postgres-backup.js";
import { registerPostgresImport } from "./postgres-import.js";
import { rollSecrets } from "./secrets.js";

/** One member of a cluster, as `GET /v1/postgres/{name}` shows it (live figures null when it did not answer). */
export interface PgMember {
  id: string;
  region: string;
  host_id: string;
  volume_id: string;
  role: string | null;
  state: string;
  fenced: boolean;
  timeline: number | null;
  lsn: string | null;
  replay_lag_ms: number | null;
  healthy: boolean;
}

/** A cluster as the API's list and status answer it. */
export interface PgCluster {
  name: string;
  org: string;
  region: string;
  status: string;
  primary_id: string | null;
  timeline: number | null;
  members: PgMember[];
  attachments: Array<{ app: string; database: string; user: string; variable: string }>;
}

/** The port of `<cluster>.internal` that always reaches the primary (the members' router). */
const ROUTER_PORT = 5432;
/** The port each member's own postgres listens on, and its unix socket folder (docs/postgres.md). */
const MEMBER_PORT = 5433;
const MEMBER_SOCKET_DIR = "/data/run";
/** A create's HTTP request answers within ~20 s (202 when still going); the CLI then follows the status. */
const CREATE_REQUEST_MS = 60_000;
/** Attach and detach run one statement on the primary; a switchover waits for a promotion. */
const ATTACH_REQUEST_MS = 90_000;
const FAILOVER_REQUEST_MS = 150_000;
const POLL_MS = 500;

interface JsonFlags {
  json?: boolean;
}

interface ClusterFlags extends JsonFlags {
  app?: string;
}

interface CreateFlags extends JsonFlags {
  name: string;
  org?: string;
  region?: string;
  vmSize: string;
  volumeSize: number;
  initialClusterSize: number;
  waitTimeout: number;
}

interface AttachFlags extends ClusterFlags {
  databaseName?: string;
  variableName?: string;
  waitTimeout: number;
}

/** Commander parsers that refuse what the API would, before any call. */
function clusterName(value: string): string {
  const problem = pgClusterNameProblem(value);
  if (problem) throw new InvalidArgumentError(problem);
  return value;
}

function clusterSize(value: string): number {
  const n = Number(value);
  const problem = pgClusterSizeProblem(n);
  if (problem) throw new InvalidArgumentError(problem);
  return n;
}

function identifier(what: "database"): (value: string) => string {
  return (value) => {
    const problem = pgIdentifierProblem(what, value);
    if (problem) throw new InvalidArgumentError(problem);
    return value;
  };
}

function variableName(value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value))
    throw new InvalidArgumentError("expected an environment variable name (letters, digits and _)");
  return value;
}

/** The API path of a cluster, or of one of its actions. */
export const path = (cluster: string, verb?: string) =>
  `/postgres/${encodeURIComponent(cluster)}${verb ? `/${verb}` : ""}`;

/**
 * A 404 on a cluster's path: the cluster's app unknown to the token, or no cluster of that name, says
 * how to find the right name; others (the attached app not found) stay as the API said them.
 */
function notFoundHint(err: unknown, cluster: string): unknown {
  if (!(err instanceof ApiError) || err.httpStatus !== 404) return err;
  const hint = "list the clusters with `hangar postgres list`";
  if (err.message === `app ${cluster} not found`)
    return new CliError(`postgres cluster ${cluster} not found`, hint);
  if (err.message.includes("postgres cluster")) return new CliError(err.message, hint);
  return err;
}

/** Runs a call on a cluster's path, its 404 saying how to find the right name. */
export async function onCluster<T>(cluster: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw notFoundHint(err, cluster);
  }
}

/** The table of `hangar postgres list`. */
export function clustersTable(clusters: readonly PgCluster[]): string {
  const rows = clusters.map((c) => [
    c.name,
    c.org,
    c.region,
    c.status,
    String(c.members.length),
    c.primary_id ?? "-",
  ]);
  return formatTable(["NAME", "ORG", "REGION", "STATUS", "MEMBERS", "PRIMARY"], rows);
}

const dash = (v: string | number | null | undefined) => (v === null || v === undefined ? "-" : String(v));

/** What `hangar postgres status` prints: the cluster, its members with role, lag and timeline, its apps. */
export function clusterDetails(c: PgCluster): string {
  const fields: Array<[string, string]> = [
    ["Cluster", c.name],
    ["Org", c.org],
    ["Region", c.region],
    ["Status", c.status],
    ["Primary", dash(c.primary_id)],
    ["Timeline", dash(c.timeline)],
    ["Hostname", `${c.name}.internal:${ROUTER_PORT} (the primary)`],
  ];
  const width = Math.max(...fields.map(([k]) => k.length));
  let text = fields.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join("");
  const members = c.members.map((m) => [
    m.id,
    dash(m.role),
    m.state,
    m.healthy ? "healthy" : "unhealthy",
    m.fenced ? "yes" : "no",
    dash(m.timeline),
    dash(m.lsn),
    m.replay_lag_ms === null ? "-" : `${m.replay_lag_ms}ms`,
    m.host_id,
    m.volume_id,
  ]);
  text += `\nMembers\n${formatTable(
    ["ID", "ROLE", "STATE", "HEALTH", "FENCED", "TIMELINE", "LSN", "LAG", "HOST", "VOLUME"],
    members,
  )}`;
  if (c.attachments.length > 0) {
    const rows = c.attachments.map((a) => [a.app, a.database, a.user, a.variable]);
    text += `\nAttached apps\n${formatTable(["APP", "DATABASE", "USER", "VARIABLE"], rows)}`;
  }
  return text;
}

/** A line per member change between two looks at a creating cluster (what the create has done since). */
export function progressLines(before: PgCluster | undefined, now: PgCluster): string[] {
  const lines: string[] = [];
  const old = new Map(before?.members.map((m) => [m.id, m]) ?? []);
  for (const m of now.members) {
    const was = old.get(m.id);
    if (!was) lines.push(`Member ${m.id} added: volume ${m.volume_id} on host ${m.host_id}`);
    if (m.role && m.role !== was?.role) lines.push(`Member ${m.id} is ready as ${m.role}`);
  }
  if (now.status !== before?.status) lines.push(`Cluster ${now.name} is ${now.status}`);
  return lines;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follows a create the API answered 202 for, printing what changes, until the cluster is ready (its
 * view), failed or `timeoutMs` passed. A cluster not visible yet (its app is made first) or a
 * manager busy for a moment is asked again.
 */
export async function followCreate(
  api: ApiClient,
  name: string,
  timeoutMs: number,
  progress: (text: string) => void,
): Promise<PgCluster> {
  const deadline = Date.now() + timeoutMs;
  let last: PgCluster | undefined;
  while (Date.now() < deadline) {
    try {
      const now = await api.request<PgCluster>("GET", path(name));
      for (const line of progressLines(last, now)) progress(`${line}\n`);
      last = now;
      if (now.status === "ready") return now;
      if (now.status === "failed" || now.status === "destroyed") {
        throw new CliError(
          `creating cluster ${name} failed`,
          `see what happened with \`hangar postgres status -a ${name}\`; remove it with \`hangar postgres destroy ${name} --yes\``,
        );
      }
    } catch (err) {
      if (!(err instanceof ApiError && (err.httpStatus === 404 || err.httpStatus === 503))) throw err;
    }
    await sleep(POLL_MS);
  }
  throw new CliError(
    `cluster ${name} is not ready after ${Math.round(timeoutMs / 1000)}s`,
    `the manager goes on: follow it with \`hangar postgres status -a ${name}\``,
  );
}

async function create(ctx: Context, flags: CreateFlags): Promise<void> {
  const api = await ctx.api();
  const progress = flags.json ? ctx.err : ctx.out;
  const body = {
    name: flags.name,
    vm_size: flags.vmSize,
    volume_size_gb: flags.volumeSize,
    initial_cluster_size: flags.initialClusterSize,
    ...(flags.region ? { region: flags.region } : {}),
    ...(flags.org ? { org_slug: flags.org } : {}),
  };
  progress(
    `Creating postgres cluster ${flags.name}: ${flags.initialClusterSize} member(s) of ${flags.vmSize}, ${flags.volumeSize}GB volume each\n`,
  );
  const res = await api.send("POST", "/postgres", {
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
    timeoutMs: CREATE_REQUEST_MS,
  });
  const answered = (await res.json()) as PgCluster;
  const cluster =
    res.status === 202 ? await followCreate(api, flags.name, flags.waitTimeout * 1000, progress) : answered;
  if (flags.json) return printJson(ctx, cluster);
  const n = cluster.name;
  ctx.out(
    `\nPostgres cluster ${n} is ready (primary ${dash(cluster.primary_id)}, ${cluster.members.length} member(s))\n` +
      `  Hostname:    ${n}.internal\n` +
      `  Proxy port:  ${ROUTER_PORT} (always the primary)\n` +
      `  Member port: ${MEMBER_PORT} (each member itself)\n` +
      `  Superuser:   postgres, its password in the cluster app's secret OPERATOR_PASSWORD\n\n` +
      `Give an app a database and DATABASE_URL: hangar postgres attach ${n} -a <app>\n` +
      `Open psql on the primary:                hangar postgres connect -a ${n}\n`,
  );
}

/** The cluster a command names with -a, or the app of hangar.toml here. */
export async function clusterOf(ctx: Context, flags: ClusterFlags): Promise<string> {
  return resolveAppName(flags.app, flags.app ? undefined : await loadAppConfig(ctx.cwd));
}

/** Attaches or detaches an app, then rolls its machines onto the changed secret, as `hangar secrets set`. */
async function changeAttachment(
  ctx: Context,
  cluster: string,
  flags: AttachFlags,
  verb: "attach" | "detach",
): Promise<void> {
  const app = await clusterOf(ctx, flags);
  const api = await ctx.api();
  const progress = flags.json ? ctx.err : ctx.out;
  const body = {
    app,
    ...(flags.databaseName ? { database_name: flags.databaseName } : {}),
    ...(flags.variableName ? { variable_name: flags.variableName } : {}),
  };
  const answer = await onCluster(cluster, () =>
    api.request<{ database: string; user: string; variable: string; secret_unset?: boolean }>(
      "POST",
      path(cluster, verb),
      { body, timeoutMs: ATTACH_REQUEST_MS },
    ),
  );
  if (verb === "attach") {
    progress(
      `Database ${answer.database} and user ${answer.user} ready on cluster ${cluster}; secret ${answer.variable} set on app ${app}\n`,
    );
  } else {
    progress(
      `Database ${answer.database} and user ${answer.user} dropped from cluster ${cluster}` +
        `${answer.secret_unset ? `; secret ${answer.variable} unset on app ${app}` : ""}\n`,
    );
  }
  const changed = verb === "attach" || answer.secret_unset === true;
  const rolled = changed
    ? await rollSecrets(api, app, {
        waitTimeoutMs: flags.waitTimeout * 1000,
        progress,
        reason: `postgres ${verb} ${cluster}`,
      })
    : undefined;
  if (rolled) progress(`Release v${rolled.release} is live on ${rolled.machines.length} machine(s)\n`);
  if (flags.json) printJson(ctx, { cluster, app, ...answer, rolled: rolled ?? null });
}

/**
 * The command `connect` runs inside the primary: psql as the local superuser over the member's unix
 * socket (peer authentication, so no password travels), as the OS user postgres: a console runs as
 * the image's user, and root becomes postgres first. Without a terminal, a failing statement ends it
 * with a non-zero status, so that scripts notice.
 */
export function psqlCommand(database: string, tty: boolean): string {
  const psql = [
    "psql",
    `-h ${MEMBER_SOCKET_DIR}`,
    `-p ${MEMBER_PORT}`,
    "-U postgres",
    `-d ${database}`,
    ...(tty ? [] : ["-v ON_ERROR_STOP=1"]),
  ].join(" ");
  return `sh -c 'if [ "$(id -u)" = 0 ]; then exec runuser -u postgres -- ${psql}; fi; exec ${psql}'`;
}

async function connect(ctx: Context, flags: ClusterFlags & { database: string }): Promise<void> {
  const cluster = await clusterOf(ctx, flags);
  const api = await ctx.api();
  const status = await onCluster(cluster, () => api.request<PgCluster>("GET", path(cluster)));
  if (!status.primary_id) {
    throw new CliError(
      `cluster ${cluster} has no primary right now (${status.status})`,
      `see its members with \`hangar postgres status -a ${cluster}\``,
    );
  }
  const { stdin } = ctx;
  const tty = stdin?.isTTY === true;
  const { cols, rows } = ctx.terminalSize();
  const socket = await api.openTunnel(cluster, status.primary_id, "console", {
    cmd: psqlCommand(flags.database, tty),
    tty: tty ? 1 : undefined,
    cols,
    rows,
  });
  const raw = tty && stdin?.setRawMode !== undefined;
  if (raw) stdin?.setRawMode?.(true);
  let code: number;
  try {
    code = await runConsoleSession(socket, { out: ctx.out, err: ctx.err, ...(stdin ? { stdin } : {}) });
  } finally {
    if (raw) stdin?.setRawMode?.(false);
    stdin?.pause();
  }
  if (code !== 0) throw new ExitStatus(code);
}

function withCluster(cmd: Command): Command {
  return cmd
    .option("-a, --app <name>", "the cluster (default: `app` in hangar.toml or fly.toml here)")
    .option("--json", "print the API's JSON");
}

function withApp(cmd: Command): Command {
  return cmd
    .argument("<cluster>", "the postgres cluster", clusterName)
    .option("-a, --app <name>", "the app (default: `app` in hangar.toml or fly.toml here)")
    .option("--json", "print the outcome as one JSON object")
    .addOption(waitTimeoutOption(60, "60s", "the app's new machines to start and pass their checks"));
}

/** `hangar postgres create|list|status|attach|detach|connect|import|failover|destroy`, as flyctl's. */
export function registerPostgres(program: Command, ctx: Context): void {
  const pg = program
    .command("postgres")
    .alias("pg")
    .description("Postgres clusters: an app of members with volumes, streaming replication and failover");

  pg.command("create")
    .description(
      "create a cluster: a primary and, with --initial-cluster-size 3, two synchronous-capable replicas",
    )
    .requiredOption("--name <name>", "cluster name (also its app's name)", clusterName)
    .option("--org <slug>", "org of the cluster (default: the token's)")
    .option("-r, --region <region>", "region (default: the platform's)")
    .addOption(
      new Option("--vm-size <size>", "members' VM size")
        .choices(Object.keys(CPU_VM_SIZES))
        .default("shared-cpu-1x"),
    )
    .addOption(
      new Option("--volume-size <gb>", "each member's volume, in GB").argParser(positiveInt).default(1),
    )
    .addOption(
      new Option("--initial-cluster-size <n>", "members (3 or more: synchronous replication)")
        .argParser(clusterSize)
        .default(1),
    )
    .option("--json", "print the cluster as JSON (progress on stderr)")
    .addOption(waitTimeoutOption(900, "15m", "every member to be ready"))
    .action((flags: CreateFlags) => create(ctx, flags));

  pg.command("list")
    .description("list the org's clusters")
    .option("--org <slug>", "org (default: the token's)")
    .option("--json", "print the API's JSON")
    .action(async (flags: JsonFlags & { org?: string }) => {
      const api = await ctx.api();
      const { clusters } = await api.request<{ clusters: PgCluster[] }>("GET", "/postgres", {
        query: { org_slug: flags.org },
      });
      if (flags.json) return printJson(ctx, clusters);
      if (clusters.length === 0)
        return ctx.out("No postgres clusters: create one with `hangar postgres create --name <name>`\n");
      ctx.out(clustersTable(clusters));
    });

  withCluster(pg.command("status"))
    .description("show a cluster's members: role, state, timeline, LSN and replication lag")
    .action(async (flags: ClusterFlags) => {
      const cluster = await clusterOf(ctx, flags);
      const api = await ctx.api();
      const status = await onCluster(cluster, () => api.request<PgCluster>("GET", path(cluster)));
      if (flags.json) return printJson(ctx, status);
      ctx.out(clusterDetails(status));
    });

  withApp(pg.command("attach"))
    .description(
      "give an app a database and user on the cluster, set the connection URI as its secret and roll its machines",
    )
    .option(
      "--database-name <name>",
      "database and user name (default: the app's, - as _)",
      identifier("database"),
    )
    .option("--variable-name <name>", "the secret holding the URI (default: DATABASE_URL)", variableName)
    .action((cluster: string, flags: AttachFlags) => changeAttachment(ctx, cluster, flags, "attach"));

  withApp(pg.command("detach"))
    .description("drop an app's database and user from the cluster, unset its secret and roll its machines")
    .action((cluster: string, flags: AttachFlags) => changeAttachment(ctx, cluster, flags, "detach"));

  pg.command("connect")
    .description(
      "run psql on the cluster's primary as postgres (stdin works: echo 'select 1' | hangar postgres connect -a db)",
    )
    .option("-a, --app <name>", "the cluster (default: `app` in hangar.toml or fly.toml here)")
    .option("-d, --database <name>", "database", identifier("database"), "postgres")
    .action((flags: ClusterFlags & { database: string }) => connect(ctx, flags));

  registerPostgresImport(pg, ctx);
  registerPostgresBackup(pg, ctx);

  withCluster(pg.command("failover"))
    .description(
      "switch the primary over to the most advanced replica (planned: no committed transaction is lost)",
    )
    .action(async (flags: ClusterFlags) => {
      const cluster = await clusterOf(ctx, flags);
      const api = await ctx.api();
      const res = await onCluster(cluster, () =>
        api.request<{
          old_primary_id: string;
          new_primary_id: string;
          timeline: number;
          duration_ms: number;
        }>("POST", path(cluster, "failover"), { timeoutMs: FAILOVER_REQUEST_MS }),
      );
      if (flags.json) return printJson(ctx, res);
      ctx.out(
        `Primary of ${cluster} switched over from ${res.old_primary_id} to ${res.new_primary_id} ` +
          `(timeline ${res.timeline}, ${(res.duration_ms / 1000).toFixed(1)}s)\n`,
      );
    });

  pg.command("destroy")
    .argument("<cluster>", "the postgres cluster", clusterName)
    .description("destroy a cluster: its machines, volumes and data")
    .option("-y, --yes", "confirm: the data is gone for good")
    .action(async (cluster: string, flags: { yes?: boolean }) => {
      if (!flags.yes) {
        throw new CliError(
          `refusing to destroy cluster ${cluster} without confirmation`,
          `its data is gone for good: \`hangar postgres destroy ${cluster} --yes\``,
        );
      }
      const api = await ctx.api();
      await onCluster(cluster, () =>
        api.request("DELETE", path(cluster), { timeoutMs: FAILOVER_REQUEST_MS }),
      );
      ctx.out(`Postgres cluster ${cluster} destroyed\n`);
    });
}
