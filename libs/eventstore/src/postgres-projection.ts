import type { JetStreamClient } from "@nats-io/jetstream";
import { type Kysely, type QueryExecutorProvider, sql, type Transaction } from "kysely";
import { ensureDurable, type ProjectedMessage, type RunningProjection, runProjection } from "./projection.js";
import type { AggregateStream } from "./stream.js";

/** A read model in Postgres fed by one stream. */
export interface PostgresProjection<E, DB> {
  /** The projection's identity: its checkpoint row and its durable consumer. */
  name: string;
  /** Writes one message's effect on the read model, inside the batch's transaction. */
  apply(trx: Transaction<DB>, message: ProjectedMessage<E>): Promise<void>;
  /** Deletes every row the projection wrote, for a rebuild from zero. */
  reset(trx: Transaction<DB>): Promise<void>;
  /** Only these subjects of the stream (default: all). */
  filter?: string;
}

/** Creates the checkpoint table that every Postgres projection shares. */
export async function migrateCheckpoints(db: QueryExecutorProvider): Promise<void> {
  await sql`create table if not exists projection_checkpoints (
    name text primary key,
    seq bigint not null default 0
  )`.execute(db);
}

/** The last stream sequence a projection has applied (0: none). */
export async function readCheckpoint(db: QueryExecutorProvider, name: string): Promise<number> {
  const r = await sql<{ seq: string }>`select seq from projection_checkpoints where name = ${name}`.execute(
    db,
  );
  return Number(r.rows[0]?.seq ?? 0);
}

/**
 * Runs a Postgres projection: each batch is applied in one transaction that also moves the
 * checkpoint, and messages at or below the checkpoint are skipped, so redeliveries and replays
 * change nothing. Postgres is the truth about progress: at start, a consumer ahead of it, or one
 * holding unacknowledged messages of a crashed run, is recreated from the checkpoint.
 */
export async function runPostgresProjection<E extends { type: string }, DB>(
  js: JetStreamClient,
  stream: AggregateStream<E>,
  db: Kysely<DB>,
  projection: PostgresProjection<E, DB>,
  opts: { batchSize?: number; onError?(err: unknown): void; retryDelayMs?: number } = {},
): Promise<RunningProjection> {
  await migrateCheckpoints(db);
  await sql`insert into projection_checkpoints (name, seq) values (${projection.name}, 0)
    on conflict (name) do nothing`.execute(db);
  const checkpoint = await readCheckpoint(db, projection.name);
  const jsm = await js.jetstreamManager();
  const batchSize = opts.batchSize ?? 256;
  const filter = projection.filter ?? `${stream.subjectPrefix}.>`;
  const info = await ensureDurable(jsm, stream.name, {
    name: projection.name,
    filter,
    batchSize,
    afterSeq: checkpoint,
  });
  // Postgres knows how far the read model got; the consumer is rebuilt from there when it
  // disagrees: ahead of the checkpoint (a restored or reset database), or holding messages a
  // crashed instance never acknowledged, which would block delivery until their ack_wait ran out.
  if (info.ack_floor.stream_seq > checkpoint || info.num_ack_pending > 0) {
    await jsm.consumers.delete(stream.name, projection.name);
  }
  return runProjection(js, stream, {
    name: projection.name,
    filter,
    batchSize,
    afterSeq: checkpoint,
    ...(opts.onError ? { onError: opts.onError } : {}),
    ...(opts.retryDelayMs !== undefined ? { retryDelayMs: opts.retryDelayMs } : {}),
    handle: (batch) =>
      db.transaction().execute(async (trx) => {
        // The row lock makes two instances of one projection take turns instead of interleaving.
        const r = await sql<{ seq: string }>`select seq from projection_checkpoints
          where name = ${projection.name} for update`.execute(trx);
        const applied = Number(r.rows[0]?.seq ?? 0);
        let last = applied;
        for (const message of batch) {
          if (message.seq <= last) continue;
          await projection.apply(trx, message);
          last = message.seq;
        }
        if (last > applied) {
          await sql`update projection_checkpoints set seq = ${last} where name = ${projection.name}`.execute(
            trx,
          );
        }
      }),
  });
}

/**
 * Rebuilds a projection from zero: in one transaction its rows are deleted and its checkpoint
 * reset, then its consumer is deleted. Run it again afterwards to replay the whole stream.
 */
export async function resetPostgresProjection<E extends { type: string }, DB>(
  js: JetStreamClient,
  stream: AggregateStream<E>,
  db: Kysely<DB>,
  projection: PostgresProjection<E, DB>,
): Promise<void> {
  await migrateCheckpoints(db);
  await db.transaction().execute(async (trx) => {
    await projection.reset(trx);
    await sql`insert into projection_checkpoints (name, seq) values (${projection.name}, 0)
      on conflict (name) do update set seq = 0`.execute(trx);
  });
  const jsm = await js.jetstreamManager();
  await jsm.consumers.delete(stream.name, projection.name).catch(() => {});
}
