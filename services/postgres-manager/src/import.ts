import { setTimeout as sleep } from "node:timers/promises";
import { CPU_VM_SIZES } from "@hangar/config";
import { machineAggregateId, newMachineId, pgClusterNameProblem } from "@hangar/domain";
import { DomainError } from "@hangar/eventstore";
import { scopeOfApp } from "@hangar/secrets";
import {
  CommandError,
  handleThenWait,
  type MachineLogLine,
  type PgImportReply,
  type PgImportRequest,
  placeThenCreateMachine,
  sealSecrets,
  secretsDataKey,
  subjects,
} from "@hangar/service";
import type { ClusterOps } from "./cluster-ops.js";

/** The cluster app's secret the importer reads its source from, as flyctl names it. */
export const SOURCE_SECRET = "SOURCE_DATABASE_URI";
/** The port of every member's router, which forwards to the current primary. */
const ROUTER_PORT = 5432;
/** How many of the importer's last output lines the answer carries. */
const LOG_TAIL_LINES = 30;
/** The longest an import may run before its machine is destroyed. */
const IMPORT_TIMEOUT_MS = 60 * 60_000;
/** Lines the host agent published just before the exit was recorded may still be on their way. */
const LATE_LINES_MS = 500;
/** How long the answer waits for the importer's machine to be destroyed once that has begun. */
const DESTROY_WAIT_MS = 30_000;
/**
 * Database names the importer writes into: they go into its environment and to psql/pg_restore as
 * arguments (never through a shell's parsing), and `=` would make pg_restore read a connection string.
 */
const DATABASE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_$.-]{0,62}$/;
/** Databases an import may not write into. */
const SYSTEM_DATABASES = new Set(["template0", "template1"]);

/** An import's source, checked: where it is and which database it copies, without its password. */
export interface ImportSource {
  host: string;
  database: string;
}

/** The source URL's host and database, or a refusal (invalid_argument) that never repeats the URL. */
export function importSource(sourceUrl: unknown): ImportSource {
  if (typeof sourceUrl !== "string" || sourceUrl === "")
    throw new DomainError("source_url must be a postgres:// URL", "invalid_argument");
  let url: URL;
  try {
    url = new URL(sourceUrl);
  } catch {
    throw new DomainError(
      "source_url is not a URL: expected postgres://<user>:<password>@<host>[:<port>]/<database>",
      "invalid_argument",
    );
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:")
    throw new DomainError(
      `source_url must start with postgres:// or postgresql://, not ${url.protocol}//`,
      "invalid_argument",
    );
  if (url.hostname === "")
    throw new DomainError(
      "source_url names no host: postgres://<user>@<host>/<database>",
      "invalid_argument",
    );
  let path: string;
  try {
    path = decodeURIComponent(url.pathname.replace(/^\//, ""));
  } catch {
    throw new DomainError("source_url's database name is not valid percent-encoding", "invalid_argument");
  }
  // libpq's default database is the user's name.
  const database = path || decodeURIComponent(url.username) || "postgres";
  if (!DATABASE_NAME.test(database) || SYSTEM_DATABASES.has(database))
    throw new DomainError(
      `cannot import into a database named ${JSON.stringify(database)}: letters, digits, _ $ . - only, not template0/1`,
      "invalid_argument",
    );
  return { host: url.hostname, database };
}

/** pg_dump's and pg_restore's flags from the request's options, refused when they contradict. */
export function importFlags(options: PgImportRequest["options"]): { dump: string[]; restore: string[] } {
  const o = options ?? {};
  for (const [name, value] of Object.entries(o))
    if (value !== undefined && typeof value !== "boolean")
      throw new DomainError(`options.${name} must be true or false`, "invalid_argument");
  if (o.data_only && o.schema_only)
    throw new DomainError("data_only and schema_only exclude each other", "invalid_argument");
  return {
    dump: [...(o.data_only ? ["--data-only"] : []), ...(o.schema_only ? ["--schema-only"] : [])],
    restore: o.clean ? ["--clean", "--if-exists"] : [],
  };
}

/**
 * The importer's script (bash, run as the machine's command): creates the target database when
 * missing, then pipes pg_dump of the source into pg_restore through the members' routers. The
 * source URL and the superuser's password come from the machine's secrets, the database name and
 * routers from its environment: nothing secret is in the script or the machine's config.
 */
export function importScript(flags: { dump: string[]; restore: string[] }): string {
  const dump = ["pg_dump", "-Fc", "--no-owner", "--no-privileges", ...flags.dump].join(" ");
  const restore = ["pg_restore", "--no-owner", "--no-privileges", "--verbose", ...flags.restore].join(" ");
  return [
    "set -euo pipefail",
    // Only the target's commands get these: pg_dump reads nothing but its URL.
    'target() { PGHOST="$IMPORT_TARGET_HOSTS" PGPORT=$IMPORT_TARGET_PORT PGUSER=postgres PGPASSWORD="$OPERATOR_PASSWORD" PGSSLMODE=disable PGCONNECT_TIMEOUT=10 "$@"; }',
    'echo "import: into database $IMPORT_DATABASE"',
    `target psql -X -q -d postgres -v ON_ERROR_STOP=1 -v db="$IMPORT_DATABASE" <<'SQL'`,
    "SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \\gexec",
    "SQL",
    'echo "import: pg_dump | pg_restore"',
    `${dump} "$${SOURCE_SECRET}" | target ${restore} -d "$IMPORT_DATABASE"`,
    'echo "import: done"',
  ].join("\n");
}

/**
 * `cmd.postgres.import` (flyctl's `postgres import`): seals the source URL as the cluster app's
 * SOURCE_DATABASE_URI, runs the importer in a temporary machine of the cluster's app (the member
 * image has postgres 15's pg_dump and pg_restore; no volume, restart policy no), waits for it to
 * exit and answers its exit code and last lines. The machine is destroyed and the secret unset
 * whatever happened. One import per cluster at a time in this manager (they share the secret).
 */
export class PostgresImporter {
  private readonly running = new Set<string>();

  constructor(private readonly ops: ClusterOps) {}

  async import(req: PgImportRequest): Promise<PgImportReply> {
    const cluster = typeof req?.cluster === "string" ? req.cluster : "";
    const nameProblem = pgClusterNameProblem(cluster);
    if (nameProblem) throw new DomainError(nameProblem, "invalid_argument");
    const source = importSource(req.source_url);
    const flags = importFlags(req.options);
    const c = this.ops.cluster(cluster);
    if (!c || c.status === "destroyed")
      throw new DomainError(`postgres cluster ${cluster} not found`, "not_found");
    if (c.status !== "ready")
      throw new DomainError(
        `cluster ${cluster} is ${c.status}: import into a ready cluster`,
        "failed_precondition",
      );
    const routers = this.ops.addresses(c);
    if (routers.length === 0)
      throw new CommandError(`no member of cluster ${cluster} is started`, "unavailable");
    if (this.running.has(cluster))
      throw new DomainError(
        `an import into cluster ${cluster} is running; try again after it`,
        "failed_precondition",
      );
    this.running.add(cluster);
    const log = this.ops.opts.logger.child({ cluster, source_host: source.host, database: source.database });
    const machineId = newMachineId();
    const started = Date.now();
    const tail: string[] = [];
    const sub = this.ops.opts.nc.subscribe(subjects.logsOf(cluster, { machineId }), {
      callback: (err, msg) => {
        if (err) return;
        tail.push((msg.json() as MachineLogLine).line);
        if (tail.length > LOG_TAIL_LINES) tail.shift();
      },
    });
    log.info({ machine: machineId }, "import started");
    try {
      await this.setSource(cluster, machineId, req.source_url);
      const size = CPU_VM_SIZES[c.vm_size];
      const guest = { cpu_kind: size?.cpu_kind ?? "shared", cpus: c.cpus, memory_mb: c.memory_mb };
      await placeThenCreateMachine(
        { nc: this.ops.opts.nc, machines: this.ops.machinesHandler, view: this.ops.machines },
        {
          app: cluster,
          machineId,
          region: c.region,
          name: `import-${machineId}`,
          config: {
            image: c.image,
            guest,
            init: { exec: ["/bin/bash", "-c", importScript(flags)] },
            env: {
              IMPORT_DATABASE: source.database,
              IMPORT_TARGET_HOSTS: routers.map((r) => r.address).join(","),
              IMPORT_TARGET_PORT: String(ROUTER_PORT),
            },
            restart: { policy: "no" },
            auto_destroy: true,
            metadata: { "hangar-postgres-cluster": cluster, "hangar-postgres-import": "true" },
          },
        },
      );
      const exit = await this.exited(cluster, machineId);
      await sleep(LATE_LINES_MS);
      if (exit.failure) tail.push(exit.failure);
      const reply: PgImportReply = {
        cluster,
        database: source.database,
        machine_id: machineId,
        exit_code: exit.code,
        log_tail: [...tail],
        duration_ms: Date.now() - started,
      };
      log.info({ machine: machineId, exit_code: exit.code, duration_ms: reply.duration_ms }, "import ended");
      return reply;
    } finally {
      sub.unsubscribe();
      await this.cleanUp(cluster, machineId).catch((err: unknown) =>
        log.error({ err: String(err), machine: machineId }, "import clean-up failed"),
      );
      this.running.delete(cluster);
    }
  }

  /** Seals the source URL as the cluster app's deployed secret, so the importer's machine gets it. */
  private async setSource(cluster: string, machineId: string, sourceUrl: string): Promise<void> {
    const crypto = scopeOfApp(cluster);
    const dataKey = await secretsDataKey(this.ops.opts.keys, {
      crypto,
      state: () => this.ops.appSecrets(cluster),
      record: (command) => this.recordSecrets(cluster, command, `pg-import-key-${machineId}`),
    });
    await this.recordSecrets(
      cluster,
      {
        type: "UpdateSecrets",
        set: sealSecrets(dataKey, crypto, [[SOURCE_SECRET, sourceUrl]]),
        unset: [],
        staged: false,
        atMs: Date.now(),
      },
      `pg-import-source-${machineId}`,
    );
  }

  private async recordSecrets(
    cluster: string,
    command: Parameters<ClusterOps["secretsHandler"]["handle"]>[1],
    commandId: string,
  ): Promise<void> {
    await handleThenWait(this.ops.secretsHandler, this.ops.secrets, `app.${cluster}`, command, { commandId });
  }

  /** Resolves with the importer's exit once its machine has stopped or failed to start. */
  private exited(cluster: string, machineId: string): Promise<{ code: number | null; failure?: string }> {
    return new Promise((resolve, reject) => {
      let unsubscribe = () => {};
      let timer: NodeJS.Timeout | undefined;
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        unsubscribe();
        settle();
      };
      const check = () => {
        const m = this.ops.machines.machine(cluster, machineId);
        if (!m) return;
        if (m.status === "failed")
          finish(() => resolve({ code: null, failure: `the importer did not start: ${m.failure}` }));
        else if (m.status === "stopped" || m.status === "destroying" || m.status === "destroyed")
          finish(() => resolve({ code: m.lastExitCode }));
      };
      timer = setTimeout(
        () =>
          finish(() =>
            reject(
              new CommandError(
                `the import ran longer than ${IMPORT_TIMEOUT_MS / 60_000} minutes and was stopped`,
                "timeout",
              ),
            ),
          ),
        IMPORT_TIMEOUT_MS,
      );
      unsubscribe = this.ops.machines.subscribe((change) => {
        if (change.aggregateId === machineAggregateId(cluster, machineId)) check();
      });
      check();
    });
  }

  /** Resolves once the machine is destroyed; rejects after DESTROY_WAIT_MS. */
  private destroyed(cluster: string, machineId: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const gone = () => this.ops.machines.machine(cluster, machineId)?.status === "destroyed";
      if (gone()) return resolve();
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new Error(`machine ${machineId} not destroyed after ${DESTROY_WAIT_MS / 1000} s`));
      }, DESTROY_WAIT_MS);
      const unsubscribe = this.ops.machines.subscribe((change) => {
        if (change.aggregateId !== machineAggregateId(cluster, machineId) || !gone()) return;
        clearTimeout(timer);
        unsubscribe();
        resolve();
      });
    });
  }

  /**
   * Destroys the importer's machine (when it was created), waits until it is destroyed (its
   * auto_destroy may have begun that already), and unsets the source secret (when set): the answer
   * comes when nothing of the import is left, or after DESTROY_WAIT_MS with the failure logged.
   */
  private async cleanUp(cluster: string, machineId: string): Promise<void> {
    const m = this.ops.machines.machine(cluster, machineId);
    if (m && m.status !== "destroyed" && m.status !== "destroying") {
      await handleThenWait(
        this.ops.machinesHandler,
        this.ops.machines,
        machineAggregateId(cluster, machineId),
        { type: "DestroyMachine", force: true, nowMs: Date.now() },
        { commandId: `pg-import-destroy-${machineId}` },
      );
    }
    const secrets = this.ops.appSecrets(cluster);
    if (secrets?.deployed[SOURCE_SECRET] || secrets?.staged[SOURCE_SECRET]) {
      await this.recordSecrets(
        cluster,
        { type: "UpdateSecrets", set: [], unset: [SOURCE_SECRET], staged: false, atMs: Date.now() },
        `pg-import-unset-${machineId}`,
      );
    }
    if (m) await this.destroyed(cluster, machineId);
  }
}
