// A read model of counters whose rows show any event applied twice or skipped: `events` is a
// plain increment (not idempotent by itself) and `totals` concatenates every total seen.
import { type Kysely, sql } from "kysely";
import type { PostgresProjection } from "../src/mod.js";
import type { CounterEvent } from "./counter.js";

export interface CounterTables {
  counters: { aggregate_id: string; events: number; total: number; totals: string };
}

export async function migrateCounters(db: Kysely<CounterTables>): Promise<void> {
  await sql`create table if not exists counters (
    aggregate_id text primary key,
    events integer not null,
    total integer not null,
    totals text not null
  )`.execute(db);
}

export function counterProjection(name: string): PostgresProjection<CounterEvent, CounterTables> {
  return {
    name,
    async apply(trx, message) {
      for (const { event } of message.events) {
        if (event.type !== "Incremented") continue;
        await trx
          .insertInto("counters")
          .values({
            aggregate_id: message.aggregateId,
            events: 1,
            total: event.data.totalAfter,
            totals: String(event.data.totalAfter),
          })
          .onConflict((oc) =>
            oc.column("aggregate_id").doUpdateSet({
              events: sql`counters.events + 1`,
              total: event.data.totalAfter,
              totals: sql`counters.totals || ',' || ${String(event.data.totalAfter)}`,
            }),
          )
          .execute();
      }
    },
    async reset(trx) {
      await trx.deleteFrom("counters").execute();
    },
  };
}

export async function readCounters(db: Kysely<CounterTables>) {
  return db.selectFrom("counters").selectAll().orderBy("aggregate_id").execute();
}
