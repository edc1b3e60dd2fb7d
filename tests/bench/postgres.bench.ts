// Postgres clusters end to end (issue 16, acceptance 7), on a whole platform started by
// tests/platform/harness.ts (every service its own process, members in real machines on real volumes):
// - tps: pgbench (the host's, TPC-B-like, scale SCALE, CLIENTS clients, SECONDS s) against a cluster of
//   3 members (synchronous replication, ANY 1) through a member's router (port 5432 on its host-local
//   IPv4, which forwards to the primary's 5433), the way an app's DATABASE_URL reaches it;
// - solo_tps: the same against a cluster of 1 member (no replica, so no synchronous replication) of the
//   same VM size: sync_cost is 1 - tps / solo_tps, the cost of synchronous replication on its own;
// - primary_direct_tps: the same load on the 3-member cluster again, straight to its primary's
//   postgres (port 5433), without the router's hop: what the router costs, in the same run;
// - native_tps: the same against one Postgres 15 on the host (@hangar/testkit startPostgres on a durable
//   data dir with data checksums), with the cluster primary's settings copied (SHOW ... then ALTER
//   SYSTEM), no replication, no machine around it;
// - lag_p99_ms: the replicas' replay_lag_ms, sampled from the cluster's status (GET /v1/postgres/<name>)
//   every LAG_SAMPLE_MS during the cluster's pgbench run;
// - failover_s_p50 / failover_s_max: KILLS kills of the primary's machine (SIGKILL of every process in
//   its cgroup) while a numbered writer commits through the surviving members' routers, each timed from
//   the kill until the first COMMIT acknowledged after it; every acknowledged number is checked present;
// - restore_mb_s: a base backup of the 1-member cluster (its pgbench data) restored into a new cluster
//   (POST /v1/postgres/<name>/backups, then .../backups/restore): the backup's MB over the seconds from
//   the restore request until the new cluster is whole, end to end (its volume and machine made, the
//   tar and WAL uploaded from PG_BACKUPS, recovery, promotion).
import { execFile } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { type PostgresServer, startPostgres } from "@hangar/testkit";
import pg from "pg";
import {
  attachedUri,
  clusterStatus,
  createCluster,
  isWhole,
  membersIn,
  type PgPlatform,
  routerTargets,
  startPgPlatform,
  waitForStatus,
} from "../postgres/cluster.js";
import { clusterWriter, type FailoverRound, failoverRound } from "../postgres/failover.js";
import { uriAt } from "../postgres/writer.js";
import { percentile, printTable, round } from "./stats.js";

const exec = promisify(execFile);

const PG_BIN = "/usr/lib/postgresql/15/bin";
// The members' VM size; HANGAR_BENCH_PG_VM_SIZE picks another (performance-1x: full CPU weight, as
// the native peer has; performance-2x's 4 GB each do not fit the bench's five members on its host).
const VM_SIZE = process.env.HANGAR_BENCH_PG_VM_SIZE ?? "shared-cpu-2x";
const SCALE = 5;
/** The members' postgres port (the router's 5432 forwards to the primary's). */
const PG_PORT = 5433;
const CLIENTS = 4;
const THREADS = 2;
const SECONDS = 20;
const KILLS = 5;
const LAG_SAMPLE_MS = 250;
// The primary's settings the native server copies (those that change write throughput).
const COPIED_SETTINGS = [
  "shared_buffers",
  "wal_level",
  "wal_log_hints",
  "synchronous_commit",
  "fsync",
  "full_page_writes",
  "wal_compression",
  "wal_buffers",
  "checkpoint_timeout",
  "max_wal_size",
  "min_wal_size",
  "work_mem",
  "maintenance_work_mem",
  "effective_cache_size",
];

/** Runs the host's pgbench against `uri` (libpq's own URI parsing); returns what it printed. */
async function pgbench(uri: string, args: string[]): Promise<string> {
  const { stdout } = await exec(join(PG_BIN, "pgbench"), [...args, uri], { maxBuffer: 16 << 20 });
  return stdout;
}

/** Initialises pgbench's tables at SCALE through `uri`, then runs the load; returns its tps. */
async function pgbenchTps(uri: string): Promise<number> {
  await pgbench(uri, ["-i", "-q", "-s", String(SCALE)]);
  return pgbenchLoad(uri);
}

/** Runs the load on tables already there; returns its tps. */
async function pgbenchLoad(uri: string): Promise<number> {
  const out = await pgbench(uri, ["-c", String(CLIENTS), "-j", String(THREADS), "-T", String(SECONDS)]);
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1];
  if (tps === undefined) throw new Error(`pgbench printed no tps:\n${out}`);
  return Number(tps);
}

/**
 * A cluster of `size` members and two URIs (an app's own database and user): through a member's
 * router, and straight to the primary's postgres (its port 5433), which skips the router's hop.
 */
async function benchCluster(
  pp: PgPlatform,
  name: string,
  size: number,
): Promise<{ viaRouter: string; primaryDirect: string }> {
  await createCluster(pp, name, size, VM_SIZE);
  const status = await waitForStatus(pp, name, (s) => isWhole(s, size), 60_000);
  const uri = await attachedUri(pp, name, `${name}-app`);
  const [router] = routerTargets(
    pp.p,
    status.members.map((m) => m.id),
  );
  const [primary] = routerTargets(
    pp.p,
    membersIn(status, "primary").map((m) => m.id),
  );
  if (!router || !primary) throw new Error(`cluster ${name} has no member or no primary`);
  return { viaRouter: uriAt(uri, router), primaryDirect: uriAt(uri, { host: primary.host, port: PG_PORT }) };
}

/** The primary's values of COPIED_SETTINGS, through `uri`. */
async function settingsOf(uri: string): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: uri });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string; setting: string; unit: string | null }>(
      "SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)",
      [COPIED_SETTINGS],
    );
    // A setting with a unit (8kB pages, kB, s, min, MB) is given back with it, as postgresql.conf takes it.
    const units: Record<string, string> = { kB: "kB", MB: "MB", s: "s", min: "min", ms: "ms" };
    return Object.fromEntries(
      rows.map((r) => {
        if (r.unit === "8kB" && r.setting !== "-1") return [r.name, `${Number(r.setting) * 8}kB`];
        return [r.name, r.unit && units[r.unit] ? `${r.setting}${units[r.unit]}` : r.setting];
      }),
    );
  } finally {
    await client.end();
  }
}

/** A native Postgres 15 on the host, durable, with data checksums, with `settings` applied. */
async function nativePostgres(
  settings: Record<string, string>,
): Promise<{ server: PostgresServer; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), "hangar-bench-native-"));
  const dataDir = join(dir, "data");
  // The postgres user walks into the data dir through this folder.
  await chmod(dir, 0o755);
  // initdb as the postgres user (root may not run it), with checksums as the members' initdb has.
  await exec("install", ["-d", "-o", "postgres", "-g", "postgres", dataDir]);
  await exec("runuser", [
    "-u",
    "postgres",
    "--",
    join(PG_BIN, "initdb"),
    "-D",
    dataDir,
    "--auth=trust",
    "-U",
    "postgres",
    "-E",
    "UTF8",
    "--locale=C",
    "--data-checksums",
  ]);
  const server = await startPostgres({ dataDir });
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    for (const [name, value] of Object.entries(settings)) {
      await client.query(`ALTER SYSTEM SET ${name} = ${pg.escapeLiteral(value)}`);
    }
  } finally {
    await client.end();
  }
  await server.restart();
  return { server, dir };
}

/** Samples the replicas' replay_lag_ms from the cluster's status until `done` resolves. */
async function sampleLag(pp: PgPlatform, name: string, done: Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  let finished = false;
  done.finally(() => {
    finished = true;
  });
  while (!finished) {
    const status = await clusterStatus(pp, name).catch(() => undefined);
    for (const m of status ? membersIn(status, "replica") : []) {
      if (typeof m.replay_lag_ms === "number") samples.push(m.replay_lag_ms);
    }
    await sleep(LAG_SAMPLE_MS);
  }
  return samples;
}

/** KILLS kills of the cluster's primary under a numbered writer; throws if a commit was lost. */
async function failovers(pp: PgPlatform, name: string, size: number): Promise<FailoverRound[]> {
  let status = await waitForStatus(pp, name, (s) => isWhole(s, size), 60_000);
  const uri = await attachedUri(pp, name, `${name}-writer`);
  const writer = clusterWriter(
    pp,
    uri,
    () => status.members.map((m) => m.id),
    () => status.primary_id,
  );
  const rounds: FailoverRound[] = [];
  try {
    await writer.prepare();
    writer.start();
    for (let i = 1; i <= KILLS; i++) {
      const r = await failoverRound(pp, name, size, writer);
      rounds.push(r);
      console.log(
        `kill ${i} at ${r.killedAt}: ${r.oldPrimary} -> ${r.newPrimary}${r.failedOver ? "" : " (restarted before a failover)"} (timeline ${r.timeline}), writes accepted after ${r.acceptedAfterS?.toFixed(2) ?? "never"} s, ${r.acked} acknowledged, ${r.missing.length} missing`,
      );
      if (r.missing.length > 0)
        throw new Error(`kill ${i} lost acknowledged commits: ${r.missing.join(", ")}`);
      status = r.status;
    }
  } finally {
    await writer.stop();
  }
  return rounds;
}

/** A base backup of `name` restored into a new 1-member cluster: MB/s from the request until it is whole. */
async function restoreThroughput(
  pp: PgPlatform,
  name: string,
): Promise<{ mbS: number; mb: number; seconds: number }> {
  const backup = await pp.p.api.ok<{ size: number }>("POST", `/postgres/${name}/backups`);
  const restored = `${name}-restored`;
  const started = Date.now();
  // 200 when ready within the gateway's wait, else 202: the status poll below covers both.
  await pp.p.api.ok("POST", `/postgres/${name}/backups/restore`, { name: restored });
  await waitForStatus(pp, restored, (s) => isWhole(s, 1), 600_000);
  const seconds = (Date.now() - started) / 1000;
  const mb = backup.size / 1_000_000;
  return { mbS: mb / seconds, mb, seconds };
}

/** Runs the postgres benchmark on a fresh platform; prints the table and returns the JSON figures. */
export async function run(): Promise<Record<string, unknown>> {
  const pp = await startPgPlatform();
  let native: { server: PostgresServer; dir: string } | undefined;
  try {
    const cluster = await benchCluster(pp, "pgbench3", 3);
    const solo = await benchCluster(pp, "pgbench1", 1);
    native = await nativePostgres(await settingsOf(cluster.viaRouter));

    const nativeTps = await pgbenchTps(native.server.url);
    const load = pgbenchTps(cluster.viaRouter);
    const lag = await sampleLag(pp, "pgbench3", load);
    const tps = await load;
    const primaryDirectTps = await pgbenchLoad(cluster.primaryDirect);
    const soloTps = await pgbenchTps(solo.viaRouter);
    const restore = await restoreThroughput(pp, "pgbench1");
    const kills = await failovers(pp, "pgbench3", 3);
    const times = kills.map((k) => k.acceptedAfterS ?? Number.POSITIVE_INFINITY);

    const result = {
      tps: round(tps, 1),
      native_tps: round(nativeTps, 1),
      solo_tps: round(soloTps, 1),
      sync_cost: round(1 - tps / soloTps, 3),
      primary_direct_tps: round(primaryDirectTps, 1),
      failover_s_p50: round(percentile(times, 50), 2),
      failover_s_max: round(Math.max(...times), 2),
      lag_p99_ms: lag.length > 0 ? round(percentile(lag, 99), 1) : null,
      restore_mb_s: round(restore.mbS, 2),
    };
    const bench = `pgbench -s ${SCALE} -c ${CLIENTS} -j ${THREADS} -T ${SECONDS}`;
    printTable([
      ["tps", result.tps, `${bench}, 3 members (${VM_SIZE}), sync ANY 1, via a router`],
      ["native_tps", result.native_tps, "the same on one host Postgres 15, the primary's settings"],
      ["tps_ratio", round(tps / nativeTps, 2), "target >= 0.7"],
      ["solo_tps", result.solo_tps, `the same on a 1-member cluster (${VM_SIZE}), no replica`],
      ["sync_cost", result.sync_cost, "1 - tps / solo_tps: synchronous replication alone"],
      [
        "primary_direct_tps",
        result.primary_direct_tps,
        `the 3 members again, straight to the primary's ${PG_PORT} (no router hop): ${round(primaryDirectTps / nativeTps, 2)} x native`,
      ],
      ["failover_s_p50", result.failover_s_p50, `${KILLS} SIGKILLs of the primary's machine`],
      ["failover_s_max", result.failover_s_max, "kill until the first acknowledged COMMIT; target < 10"],
      [
        "lag_p99_ms",
        result.lag_p99_ms ?? "null",
        `${lag.length} replay_lag samples under the pgbench load; target < 100`,
      ],
      [
        "restore_mb_s",
        result.restore_mb_s,
        `a ${round(restore.mb, 1)} MB base backup of pgbench1 restored into a new cluster in ${round(restore.seconds, 1)} s, end to end`,
      ],
    ]);
    return result;
  } finally {
    if (native) {
      await native.server.stop();
      await rm(native.dir, { recursive: true, force: true });
    }
    await pp.close();
  }
}
