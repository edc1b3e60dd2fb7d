// Runs the counter projection in its own process, so a test can kill it with SIGKILL mid-way.
// Usage: projection-child.ts <nats url> <postgres url> <stream prefix> <projection name>
import { connect } from "@nats-io/transport-node";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { runPostgresProjection } from "../src/mod.js";
import { counterStreamFor } from "./counter.js";
import { type CounterTables, counterProjection, migrateCounters } from "./counter-projection.js";

const [natsUrl, pgUrl, prefix, name] = process.argv.slice(2) as [string, string, string, string];
const nc = await connect({ servers: natsUrl });
const db = new Kysely<CounterTables>({
  dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pgUrl }) }),
});
await migrateCounters(db);
const { jetstream } = await import("@nats-io/jetstream");
// Small batches make the run long enough to be interrupted many transactions in.
await runPostgresProjection(jetstream(nc), counterStreamFor(prefix), db, counterProjection(name), {
  batchSize: 5,
});
process.stdout.write("running\n");
