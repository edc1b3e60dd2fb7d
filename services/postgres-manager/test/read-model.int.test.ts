import { type PgClusterCommand, pgClusterDecider, pgclustersStream } from "@hangar/domain";
import {
  CommandHandler,
  EventStore,
  ensureStream,
  prefixedStream,
  type RunningProjection,
  resetPostgresProjection,
} from "@hangar/eventstore";
import { testDatabase } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  clusterRow,
  clustersProjection,
  type Database,
  listClusters,
  migrateToLatest,
  startReadModel,
} from "../src/db/mod.js";

// A stream of this run's own: the shared nats-server may hold other tests' PGCLUSTERS.
const prefix = `t${process.pid}rm`;
const stream = prefixedStream(pgclustersStream, prefix);
const dbs: Kysely<Database>[] = [];
let nc: NatsConnection;
let store: EventStore;
let db: Kysely<Database>;
let projection: RunningProjection | undefined;
let lastSeq = 0;
let commandCount = 0;

async function database(name: string): Promise<Kysely<Database>> {
  const url = await testDatabase(inject("postgresUrl"), `${prefix}_${name}`);
  const k = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }),
  });
  dbs.push(k);
  return k;
}

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, stream);
  db = await database("main");
});

afterAll(async () => {
  await projection?.stop();
  await Promise.all(dbs.map((d) => d.destroy()));
  const admin = new pg.Client({ connectionString: inject("postgresUrl") });
  await admin.connect();
  for (const name of ["main", "broken"])
    await admin.query(`drop database if exists ${pg.escapeIdentifier(`${prefix}_${name}`)} with (force)`);
  await admin.end();
  await store?.jsm.streams.delete(stream.name).catch(() => {});
  await nc?.close();
});

/** The commands of a 3-member create, a failover, a fencing and an attach, as the manager records them. */
function story(cluster: string, org: string): PgClusterCommand[] {
  const member = (i: number) => `${cluster}-m${i}`;
  return [
    {
      type: "CreatePgCluster",
      cluster,
      org,
      region: "local",
      vmSize: "shared-cpu-1x",
      cpus: 1,
      memoryMb: 256,
      volumeSizeGb: 1,
      initialSize: 3,
      image: "hangar/postgres-member:15",
      requestedAtMs: Date.parse("2026-12-05T11:00:00Z"),
      commandId: `${cluster}-create`,
    },
    ...[0, 1, 2].map(
      (i): PgClusterCommand => ({
        type: "AddMember",
        memberId: member(i),
        volumeId: `vol_${i}`,
        hostId: `h${i}`,
      }),
    ),
    { type: "MarkMemberReady", memberId: member(0), role: "primary", timeline: 1 },
    { type: "MarkMemberReady", memberId: member(1), role: "replica", timeline: 1 },
    { type: "MarkMemberReady", memberId: member(2), role: "replica", timeline: 1 },
    { type: "MarkClusterReady", primaryId: member(0) },
    { type: "StartFailover", failoverId: "f1", kind: "failover", reason: "primary gone", startedAtMs: 1_000 },
    { type: "MarkFenced", memberId: member(0), atMs: 1_100 },
    { type: "ChooseCandidate", failoverId: "f1", memberId: member(1), lsn: "0/3000148", lsnBytes: 50331976 },
    { type: "PromoteMember", failoverId: "f1", memberId: member(1), timeline: 2 },
    { type: "RepointMember", failoverId: "f1", memberId: member(2) },
    { type: "CompleteFailover", failoverId: "f1", completedAtMs: 3_000 },
    { type: "AttachDatabase", app: "web", database: "web", user: "web", variable: "DATABASE_URL" },
  ];
}

async function record(cluster: string, commands: PgClusterCommand[]): Promise<void> {
  const handler = new CommandHandler(store, stream, pgClusterDecider);
  for (const command of commands) {
    commandCount++;
    const r = await handler.handle(cluster, command, { commandId: `${prefix}-${commandCount}` });
    lastSeq = Math.max(lastSeq, r.seq);
  }
}

/** Every row of the three tables, in a stable order. */
async function allRows(d: Kysely<Database>) {
  return {
    clusters: await d.selectFrom("pg_clusters").selectAll().orderBy("name").execute(),
    members: await d.selectFrom("pg_members").selectAll().orderBy(["cluster", "id"]).execute(),
    attachments: await d.selectFrom("pg_attachments").selectAll().orderBy(["cluster", "app"]).execute(),
  };
}

describe("the postgres manager's read model", () => {
  it("migrates once: running the migrations again is a no-op", async () => {
    expect(await migrateToLatest(db)).toEqual(["0001_init"]);
    const tables = sql<{ n: string }>`select count(*) as n from information_schema.tables
      where table_name in ('pg_clusters', 'pg_members', 'pg_attachments')`;
    expect((await tables.execute(db)).rows[0]?.n).toBe("3");
    expect(await migrateToLatest(db)).toEqual([]);
    expect((await tables.execute(db)).rows[0]?.n).toBe("3");
  });

  it("names the migration that failed", async () => {
    const broken = await database("broken");
    // A table of that name already there makes 0001_init's create fail.
    await sql`create table pg_clusters (name text)`.execute(broken);
    await expect(migrateToLatest(broken)).rejects.toThrow(/migration 0001_init failed: .*pg_clusters/);
  });

  it("folds a create, its members, a failover, fencing and an attach", async () => {
    await record("db1", story("db1", "org-a"));
    await record("db2", story("db2", "org-b").slice(0, 4));
    projection = await startReadModel(store.js, db, { stream });
    await projection.waitFor(lastSeq);

    const db1 = await clusterRow(db, "db1");
    expect(db1).toMatchObject({
      name: "db1",
      org: "org-a",
      status: "ready",
      primary_id: "db1-m1",
      timeline: 2,
      failover: null,
      initial_size: 3,
      created_at: "2026-12-05T11:00:00.000Z",
      attachments: [{ app: "web", database: "web", user: "web", variable: "DATABASE_URL" }],
    });
    expect(db1?.members).toEqual([
      {
        id: "db1-m0",
        index: 0,
        volume_id: "vol_0",
        host_id: "h0",
        role: "replica",
        ready: false,
        fenced: true,
      },
      {
        id: "db1-m1",
        index: 1,
        volume_id: "vol_1",
        host_id: "h1",
        role: "primary",
        ready: true,
        fenced: false,
      },
      {
        id: "db1-m2",
        index: 2,
        volume_id: "vol_2",
        host_id: "h2",
        role: "replica",
        ready: true,
        fenced: false,
      },
    ]);
    expect(await clusterRow(db, "nope")).toBeUndefined();
    expect((await listClusters(db)).map((c) => [c.name, c.status])).toEqual([
      ["db1", "ready"],
      ["db2", "creating"],
    ]);
    expect((await listClusters(db, { org: "org-b" })).map((c) => c.name)).toEqual(["db2"]);

    // A failover in flight shows; a destroyed cluster leaves the list but answers by name.
    await record("db2", [
      { type: "MarkMemberReady", memberId: "db2-m0", role: "primary", timeline: 1 },
      { type: "MarkMemberReady", memberId: "db2-m1", role: "replica", timeline: 1 },
      { type: "MarkMemberReady", memberId: "db2-m2", role: "replica", timeline: 1 },
      { type: "MarkClusterReady", primaryId: "db2-m0" },
      { type: "StartFailover", failoverId: "s1", kind: "switchover", reason: "asked", startedAtMs: 5_000 },
      { type: "ChooseCandidate", failoverId: "s1", memberId: "db2-m2", lsn: "0/1", lsnBytes: 1 },
    ]);
    await projection.waitFor(lastSeq);
    expect((await clusterRow(db, "db2"))?.failover).toEqual({
      id: "s1",
      kind: "switchover",
      old_primary_id: "db2-m0",
      candidate_id: "db2-m2",
      started_at: new Date(5_000).toISOString(),
    });
    await record("db1", [{ type: "DestroyPgCluster" }]);
    await projection.waitFor(lastSeq);
    expect((await listClusters(db)).map((c) => c.name)).toEqual(["db2"]);
    expect((await clusterRow(db, "db1"))?.status).toBe("destroyed");
  });

  it("gives the same rows when rebuilt from scratch", async () => {
    const before = await allRows(db);
    expect(before.clusters).toHaveLength(2);
    await projection?.stop();
    await resetPostgresProjection(store.js, stream, db, clustersProjection);
    expect((await allRows(db)).clusters).toEqual([]);
    projection = await startReadModel(store.js, db, { stream });
    await projection.waitFor(lastSeq);
    expect(await allRows(db)).toEqual(before);
  });
});
