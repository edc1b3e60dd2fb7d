import { type PgClusterEvent, type PgClusterState, pgClusterDecider, pgclustersStream } from "@hangar/domain";
import {
  type AggregateStream,
  type PostgresProjection,
  type RunningProjection,
  runPostgresProjection,
} from "@hangar/eventstore";
import type { Kysely, Transaction } from "kysely";
import { migrateToLatest } from "./migrate.js";
import type { Database } from "./schema.js";

/** The projection's name: its checkpoint row and its durable consumer on PGCLUSTERS. */
export const READ_MODEL_PROJECTION = "postgres-manager-read-model";

/**
 * PGCLUSTERS into pg_clusters, pg_members and pg_attachments. Each message evolves the cluster's
 * stored state with the decider's own evolve, then rewrites the cluster's rows from it, so the read
 * model says exactly what the decider knows (a cluster's rows are few: members and attachments).
 */
export const clustersProjection: PostgresProjection<PgClusterEvent, Database> = {
  name: READ_MODEL_PROJECTION,
  async apply(trx, message) {
    // A message that is no event (decodeStored in @hangar/eventstore) changes no row.
    if (message.events.length === 0) return;
    const cluster = message.aggregateId;
    const row = await trx
      .selectFrom("pg_clusters")
      .select("state")
      .where("name", "=", cluster)
      .executeTakeFirst();
    let state: PgClusterState = row?.state ?? null;
    for (const recorded of message.events) state = pgClusterDecider.evolve(state, recorded.event);
    if (state === null) return;
    const at = new Date(message.events.at(-1)?.timeUnixMs ?? Date.now());
    await writeCluster(trx, state, message.seq, at);
  },
  async reset(trx) {
    // Members and attachments go with their clusters (on delete cascade).
    await trx.deleteFrom("pg_clusters").execute();
  },
};

async function writeCluster(
  trx: Transaction<Database>,
  c: NonNullable<PgClusterState>,
  seq: number,
  at: Date,
): Promise<void> {
  const f = c.failover;
  const columns = {
    org: c.org,
    region: c.region,
    vm_size: c.vm_size,
    cpus: c.cpus,
    memory_mb: c.memory_mb,
    volume_size_gb: c.volume_size_gb,
    initial_size: c.initial_size,
    image: c.image,
    status: c.status,
    primary_id: c.primary_id,
    timeline: c.timeline,
    failover_id: f?.id ?? null,
    failover_kind: f?.kind ?? null,
    failover_old_primary_id: f?.old_primary_id ?? null,
    failover_candidate_id: f?.candidate_id ?? null,
    failover_started_at: f ? new Date(f.started_at_ms) : null,
    error: c.error ?? null,
    updated_at: at,
    last_seq: seq,
    state: JSON.stringify(c),
  };
  await trx
    .insertInto("pg_clusters")
    .values({ name: c.cluster, created_at: c.created_at, ...columns })
    .onConflict((oc) => oc.column("name").doUpdateSet(columns))
    .execute();
  await trx.deleteFrom("pg_members").where("cluster", "=", c.cluster).execute();
  const members = Object.values(c.members);
  if (members.length > 0)
    await trx
      .insertInto("pg_members")
      .values(
        members.map((m) => ({
          cluster: c.cluster,
          id: m.id,
          index: m.index,
          volume_id: m.volume_id,
          host_id: m.host_id,
          role: m.role,
          ready: m.ready,
          fenced: m.fenced,
        })),
      )
      .execute();
  await trx.deleteFrom("pg_attachments").where("cluster", "=", c.cluster).execute();
  if (c.attachments.length > 0)
    await trx
      .insertInto("pg_attachments")
      .values(
        c.attachments.map((a) => ({
          cluster: c.cluster,
          app: a.app,
          variable: a.variable,
          database: a.database,
          db_user: a.user,
        })),
      )
      .execute();
}

/** The JetStream client runPostgresProjection takes. */
type JetStreamClient = Parameters<typeof runPostgresProjection>[0];

/**
 * Migrates the read model to its latest version, then keeps it folded from PGCLUSTERS (`stream`
 * only for tests, which use a stream of their own) until the returned projection is stopped.
 */
export async function startReadModel(
  js: JetStreamClient,
  db: Kysely<Database>,
  opts: { stream?: AggregateStream<PgClusterEvent>; onError?(err: unknown): void } = {},
): Promise<RunningProjection> {
  await migrateToLatest(db);
  return runPostgresProjection(js, opts.stream ?? pgclustersStream, db, clustersProjection, {
    ...(opts.onError ? { onError: opts.onError } : {}),
  });
}
