import { hostname } from "node:os";
import type { EventStore, RunningProjection } from "@hangar/eventstore";
import { acquireLease, LEASES_BUCKET, type Lease } from "@hangar/lease";
import type { MasterKeys } from "@hangar/secrets";
import { type HealthReport, type RunningService, serveCommands, subjects } from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import type { Registry } from "prom-client";
import { PostgresBackups } from "./backups.js";
import { ClusterOps, type ManagerTimings } from "./cluster-ops.js";
import { type ClusterLister, PostgresCommands } from "./commands.js";
import { type Database, listClusters, startReadModel } from "./db/mod.js";
import { FailoverActor } from "./failover.js";
import { PostgresImporter } from "./import.js";
import { ClusterMetrics } from "./metrics.js";
import { backupStoreOf } from "./restore.js";
import { clusterView, factsOf } from "./views.js";

/** The lease only one manager instance acts under (failovers, creates). */
export const FAILOVER_LEASE = "postgres-manager";

export interface PostgresManagerOptions {
  nc: NatsConnection;
  store: EventStore;
  logger: Logger;
  registry: Registry;
  keys: MasterKeys | undefined;
  /** The members' image. */
  image: string;
  /** The member agents' control API port. */
  agentPort: number;
  timings: ManagerTimings;
  /** How long the failover lease holds without a renewal. */
  leaseTtlMs?: number;
  /** Replicas of the lease bucket when the manager creates it. */
  replicas?: number;
  /**
   * The platform's Postgres: the read model `list` answers from (migrated and kept folded from
   * PGCLUSTERS here). Without it, `list` answers from the manager's own fold.
   */
  databaseUrl?: string;
}

/** The read model in Postgres, kept folded while the manager runs. */
interface ReadModel {
  db: Kysely<Database>;
  projection: RunningProjection;
}

/** The manager's `list` from its own fold of PGCLUSTERS. */
export function foldLister(ops: ClusterOps): ClusterLister {
  return {
    list: async (org) =>
      ops
        .allClusters()
        .filter((c) => c.status !== "destroyed" && (org === undefined || c.org === org))
        .sort((a, b) => a.cluster.localeCompare(b.cluster))
        .map((c) => clusterView(factsOf(c), (id) => ops.machines.machine(c.cluster, id)?.region)),
  };
}

/** The manager's `list` from its read model in Postgres. */
function readModelLister(ops: ClusterOps, db: Kysely<Database>): ClusterLister {
  return {
    list: async (org) =>
      (await listClusters(db, org === undefined ? {} : { org })).map((r) =>
        clusterView(r, (id) => ops.machines.machine(r.name, id)?.region),
      ),
  };
}

/** Migrates the read model and starts folding PGCLUSTERS into it. */
async function startDatabase(store: EventStore, url: string, logger: Logger): Promise<ReadModel> {
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 4 }) }),
  });
  try {
    const projection = await startReadModel(store.js, db, {
      onError: (err) => logger.warn({ err: String(err) }, "read model projection failed; retrying"),
    });
    return { db, projection };
  } catch (err) {
    await db.destroy();
    throw err;
  }
}

/**
 * The postgres manager (docs/postgres.md): its views, the `cmd.postgres.*` handlers in the
 * `postgres-manager` queue group, and the failover actor under the `postgres-manager` lease.
 */
export class PostgresManager implements RunningService {
  private constructor(
    private readonly ops: ClusterOps,
    private readonly actor: FailoverActor,
    private readonly backups: PostgresBackups,
    private readonly lease: Lease,
    private readonly subs: Subscription[],
    private readonly readModel: ReadModel | undefined,
  ) {}

  static async start(opts: PostgresManagerOptions): Promise<PostgresManager> {
    const ops = await ClusterOps.start(opts);
    const readModel = opts.databaseUrl
      ? await startDatabase(opts.store, opts.databaseUrl, opts.logger)
      : undefined;
    if (!readModel)
      opts.logger.warn(
        "no HANGAR_DATABASE_URL: list answers from the manager's own fold, not the read model",
      );
    const metrics = new ClusterMetrics(opts.registry);
    const actor = new FailoverActor(ops, metrics);
    const lister = readModel ? readModelLister(ops, readModel.db) : foldLister(ops);
    const commands = new PostgresCommands(ops, actor, metrics, lister);
    const importer = new PostgresImporter(ops);
    const backups = new PostgresBackups(ops, await backupStoreOf(opts.nc), opts.registry);
    const onInternal = (err: unknown) => opts.logger.error({ err }, "postgres command failed");
    const serve = <Q, R>(subject: string, handle: (q: Q) => Promise<R>) =>
      serveCommands<Q, R>(opts.nc, subject, "postgres-manager", handle, onInternal);
    const p = subjects.postgres;
    const subs = [
      serve(p.create, (q) => commands.create(q as never)),
      serve(p.list, (q) => commands.list(q as never)),
      serve(p.status, (q) => commands.status(q as never)),
      serve(p.attach, (q) => commands.attach(q as never)),
      serve(p.detach, (q) => commands.detach(q as never)),
      serve(p.failover, (q) => commands.failover(q as never)),
      serve(p.destroy, (q) => commands.destroy(q as never)),
      serve(p.import, (q) => importer.import(q as never)),
      serve(p.backupCreate, (q) => backups.create(q as never)),
      serve(p.backupList, async (q) => backups.list(q as never)),
      serve(p.backupRestore, (q) => backups.restore(q as never, (name) => commands.awaitCreate(name))),
    ];
    actor.start();
    backups.start();
    // The lease holder also drains the members' WAL outboxes.
    const lead = (held: boolean) => {
      actor.setLeader(held);
      backups.setLeader(held);
    };
    const lease = await acquireLease(opts.nc, {
      bucket: LEASES_BUCKET,
      name: FAILOVER_LEASE,
      // One per process: two instances on one host must not both think they hold it.
      holder: `${hostname()}/${process.pid}`,
      ttlMs: opts.leaseTtlMs ?? 3_000,
      ...(opts.replicas === undefined ? {} : { replicas: opts.replicas }),
      onAcquired: () => lead(true),
      onLost: (reason) => {
        opts.logger.warn({ reason }, "failover lease lost");
        lead(false);
      },
      onError: (err) => opts.logger.warn({ err: String(err) }, "failover lease: NATS KV call failed"),
    });
    if (lease.isHeld()) lead(true);
    return new PostgresManager(ops, actor, backups, lease, subs, readModel);
  }

  health(): HealthReport {
    return { ok: true, failover_leader: this.actor.isLeader, clusters: this.ops.allClusters().length };
  }

  async stop(): Promise<void> {
    for (const s of this.subs) s.unsubscribe();
    await this.actor.stop();
    await this.backups.stop();
    await this.lease.release().catch(() => undefined);
    await this.readModel?.projection.stop();
    await this.readModel?.db.destroy();
    await this.ops.stop();
  }
}
