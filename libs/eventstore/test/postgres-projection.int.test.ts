import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { testDatabase } from "@hangar/testkit";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  EventStore,
  ensureStream,
  migrateCheckpoints,
  readCheckpoint,
  resetPostgresProjection,
  runPostgresProjection,
} from "../src/mod.js";
import { counterStreamFor, uniquePrefix } from "./counter.js";
import {
  type CounterTables,
  counterProjection,
  migrateCounters,
  readCounters,
} from "./counter-projection.js";

const prefix = uniquePrefix("proj");
const stream = counterStreamFor(prefix);
const AGGREGATES = 40;
const PER_AGGREGATE = 50;
let nc: NatsConnection;
let lastSeq = 0;
const dbs: Kysely<CounterTables>[] = [];
const children: ChildProcess[] = [];

async function database(name: string): Promise<{ url: string; db: Kysely<CounterTables> }> {
  const url = await testDatabase(inject("postgresUrl"), `${prefix}_${name}`);
  const db = new Kysely<CounterTables>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 4 }) }),
  });
  dbs.push(db);
  await migrateCounters(db);
  await migrateCheckpoints(db);
  return { url, db };
}

function startChild(pgUrl: string, name: string): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      "--conditions=source",
      "--import",
      "tsx",
      fileURLToPath(new URL("./projection-child.ts", import.meta.url)),
      inject("natsUrl"),
      pgUrl,
      prefix,
      name,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  children.push(child);
  return child;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  const store = await EventStore.connect(nc);
  await ensureStream(store.jsm, stream);
  // Interleave the aggregates, as real traffic does.
  for (let i = 1; i <= PER_AGGREGATE; i++) {
    const acks = await Promise.all(
      Array.from({ length: AGGREGATES }, (_, a) =>
        store.append(stream, `c${a}`, [{ type: "Incremented", data: { by: 1, totalAfter: i } }], {
          expectedSeq: "any",
          commandId: `c${a}-${i}`,
        }),
      ),
    );
    lastSeq = Math.max(lastSeq, ...acks.map((a) => a.seq));
  }
});

afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  await Promise.all(dbs.map((db) => db.destroy()));
  await nc?.drain();
});

describe("a Postgres projection", () => {
  it("killed mid-way and restarted ends with exactly the rows of a clean run; a rebuild gives them again", async () => {
    const js = jetstream(nc);
    const clean = await database("clean");
    const running = await runPostgresProjection(js, stream, clean.db, counterProjection("clean"));
    await running.waitFor(lastSeq);
    await running.stop();
    const expected = await readCounters(clean.db);
    expect(expected).toHaveLength(AGGREGATES);
    const series = Array.from({ length: PER_AGGREGATE }, (_, i) => i + 1).join(",");
    for (const row of expected)
      expect(row).toMatchObject({ events: PER_AGGREGATE, total: PER_AGGREGATE, totals: series });

    const crashed = await database("crashed");
    const first = startChild(crashed.url, "crashed");
    await until(async () => (await readCheckpoint(crashed.db, "crashed")) > 0, "the first checkpoint");
    first.kill("SIGKILL");
    await new Promise((resolve) => first.once("exit", resolve));
    const atKill = await readCheckpoint(crashed.db, "crashed");
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(lastSeq);

    const second = startChild(crashed.url, "crashed");
    await until(
      async () => (await readCheckpoint(crashed.db, "crashed")) >= lastSeq,
      "the restarted projection",
    );
    second.kill("SIGKILL");
    await new Promise((resolve) => second.once("exit", resolve));
    expect(await readCounters(crashed.db)).toEqual(expected);

    await resetPostgresProjection(js, stream, crashed.db, counterProjection("crashed"));
    expect(await readCounters(crashed.db)).toEqual([]);
    expect(await readCheckpoint(crashed.db, "crashed")).toBe(0);
    const rebuilt = await runPostgresProjection(js, stream, crashed.db, counterProjection("crashed"));
    await rebuilt.waitFor(lastSeq);
    await rebuilt.stop();
    expect(await readCounters(crashed.db)).toEqual(expected);
  });

  it("replays harmlessly when its consumer is recreated behind the checkpoint", async () => {
    const js = jetstream(nc);
    const { db } = await database("replayed");
    const first = await runPostgresProjection(js, stream, db, counterProjection("replayed"));
    await first.waitFor(lastSeq);
    await first.stop();
    const before = await readCounters(db);
    // Lose the consumer's position: every message is delivered again from the start.
    const jsm = await js.jetstreamManager();
    await jsm.consumers.delete(stream.name, "replayed");
    await jsm.consumers.add(stream.name, {
      durable_name: "replayed",
      ack_policy: "explicit" as never,
      deliver_policy: "all" as never,
    });
    const again = await runPostgresProjection(js, stream, db, counterProjection("replayed"));
    await again.waitFor(lastSeq);
    await again.stop();
    expect(await readCounters(db)).toEqual(before);
  });
});
