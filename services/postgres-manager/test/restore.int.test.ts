// Backups through the manager's commands (acceptance 5 at the manager level): the manager (its own
// process) drives a one-member cluster to ready against a real member agent (a host process on the
// host's postgresql-15, as in failover.int.test.ts), takes a base backup (cmd.postgres.backup_create:
// PgBackupStarted/PgBackupCompleted, the tar and WAL in PG_BACKUPS of a real nats-server), and
// restores it at a time T between two batches of rows into a new cluster (cmd.postgres.backup_restore):
// the new cluster's first member is recovered from the archive instead of bootstrapped and holds
// exactly the first batch. Machines are recorded in MACHINES as a host agent would; no host agent,
// placement or volume service runs, so the restored cluster's member is recorded beforehand.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { openSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  appSecretsId,
  appsStream,
  type CreatePgClusterSpec,
  machineAggregateId,
  machineDecider,
  machinesStream,
  type PgClusterEvent,
  pgClusterDecider,
  pgclustersStream,
  secretsDecider,
  secretsStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream, loadAggregate } from "@hangar/eventstore";
import { bundleMemberAgent } from "@hangar/pg-member";
import { MasterKeys, newDataKey, scopeOfApp } from "@hangar/secrets";
import {
  CommandError,
  type PgBackupList,
  type PgBackupView,
  type PgClusterView,
  type PgRestoreRequest,
  sealSecrets,
  sendCommand,
  subjects,
} from "@hangar/service";
import { freePort, type NatsServer, signalProcessTree, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { serviceArgv } from "../../../scripts/platform.js";
import { memberMachineId } from "../src/create.js";

const SOURCE = "pgsrc";
const RESTORED = "pgnew";
const RESTORE_ID = "restore-1";
const credentials = (name: string) => ({
  OPERATOR_PASSWORD: `${name}-${randomBytes(8).toString("hex")}`,
  REPL_PASSWORD: randomBytes(12).toString("hex"),
  HANGAR_PG_AGENT_TOKEN: randomBytes(12).toString("hex"),
});
const secrets = { [SOURCE]: credentials(SOURCE), [RESTORED]: credentials(RESTORED) };
const members = {
  [SOURCE]: { id: memberMachineId(SOURCE, "create-1", 0), address: "127.0.0.41" },
  [RESTORED]: { id: memberMachineId(RESTORED, RESTORE_ID, 0), address: "127.0.0.42" },
};
type Cluster = keyof typeof members;
let root = "";
let bundle = "";
let ports: { pg: number; router: number; control: number; ops: number };
let server: NatsServer;
let nc: NatsConnection;
let store: EventStore;
let manager: ChildProcess | undefined;
const agents: ChildProcess[] = [];
const keyBase64 = randomBytes(32).toString("base64");
const keys = new MasterKeys(Buffer.from(keyBase64, "base64"));

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "hangar-pgm-restore-"));
  await chmod(root, 0o755);
  bundle = join(root, "pg-member.mjs");
  await bundleMemberAgent(bundle);
  ports = {
    pg: await freePort(),
    router: await freePort(),
    control: await freePort(),
    ops: await freePort(),
  };
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  store = await EventStore.connect(nc);
  for (const s of [pgclustersStream, appsStream, machinesStream, secretsStream])
    await ensureStream(store.jsm, s);
  for (const cluster of [SOURCE, RESTORED] as const) await recordSecrets(cluster);
  await recordCluster(SOURCE, "create-1");
  await startAgent(SOURCE);
  await startAgent(RESTORED);
  await startManager();
}, 60_000);

afterAll(async () => {
  const child = manager;
  if (child?.pid !== undefined && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
  for (const a of agents) if (a.pid !== undefined) signalProcessTree(a.pid, "SIGKILL");
  store?.close();
  await nc?.close();
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

async function recordSecrets(cluster: Cluster): Promise<void> {
  const handler = new CommandHandler(store, secretsStream, secretsDecider);
  const scope = scopeOfApp(cluster);
  const dataKey = newDataKey();
  const wrapped = keys.wrap(dataKey, scope);
  const id = appSecretsId(cluster);
  const atMs = Date.now();
  await handler.handle(
    id,
    { type: "CreateDataKey", masterKeyId: wrapped.keyId, wrappedKey: wrapped.wrapped, atMs },
    { commandId: `key-${cluster}` },
  );
  const set = sealSecrets(dataKey, scope, Object.entries(secrets[cluster]));
  await handler.handle(
    id,
    { type: "UpdateSecrets", set, unset: [], staged: false, atMs },
    { commandId: `set-${cluster}` },
  );
}

/** A one-member create recorded up to its member's machine, started at its agent's address. */
async function recordCluster(
  cluster: Cluster,
  commandId: string,
  restore?: CreatePgClusterSpec["restore"],
): Promise<void> {
  const clusters = new CommandHandler(store, pgclustersStream, pgClusterDecider);
  const spec: CreatePgClusterSpec = {
    cluster,
    org: "personal",
    region: "local",
    vmSize: "shared-cpu-1x",
    cpus: 1,
    memoryMb: 256,
    volumeSizeGb: 1,
    initialSize: 1,
    image: "hangar/postgres-member:15",
    requestedAtMs: Date.now(),
    commandId,
    ...(restore ? { restore } : {}),
  };
  await clusters.handle(cluster, { type: "CreatePgCluster", ...spec }, { commandId: `create-${commandId}` });
  const { id, address } = members[cluster];
  await clusters.handle(
    cluster,
    { type: "AddMember", memberId: id, volumeId: "vol_0000000000000000", hostId: "h1" },
    { commandId: `member-${id}` },
  );
  const machines = new CommandHandler(store, machinesStream, machineDecider);
  const aggregate = machineAggregateId(cluster, id);
  await machines.handle(
    aggregate,
    {
      type: "CreateMachine",
      machineId: id,
      app: cluster,
      name: id,
      region: "local",
      instanceId: "I1",
      configJson: "{}",
      skipLaunch: false,
      hostId: "h1",
    },
    { commandId: `create-${id}` },
  );
  await machines.handle(
    aggregate,
    {
      type: "RecordStarted",
      hostId: "h1",
      pid: 1,
      privateIp: address,
      privateIpv6: "",
      port: 0,
      startTime: Date.now(),
      adopted: false,
    },
    { commandId: `started-${id}` },
  );
}

async function startAgent(cluster: Cluster): Promise<void> {
  const { id, address } = members[cluster];
  const dir = join(root, cluster);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const out = openSync(join(dir, "agent.log"), "a");
  agents.push(
    spawn(process.execPath, [bundle], {
      detached: true,
      stdio: ["ignore", out, out],
      env: {
        PATH: process.env.PATH,
        FLY_MACHINE_ID: id,
        HANGAR_PG_DATA: join(dir, "postgresql"),
        HANGAR_PG_LISTEN: address,
        HANGAR_PG_PORT: String(ports.pg),
        HANGAR_PG_ROUTER_PORT: String(ports.router),
        HANGAR_PG_CONTROL_PORT: String(ports.control),
        HANGAR_PG_CONF: "shared_buffers=16MB;max_connections=30",
        ...secrets[cluster],
      },
    }),
  );
}

async function startManager(): Promise<void> {
  const out = openSync(join(root, "manager.log"), "a");
  manager = spawn(process.execPath, serviceArgv("postgres-manager"), {
    stdio: ["ignore", out, out],
    env: {
      PATH: process.env.PATH,
      HANGAR_NATS_URL: server.url,
      HANGAR_SECRETS_KEY: keyBase64,
      HANGAR_POSTGRES_MANAGER_AGENT_PORT: String(ports.control),
      HANGAR_POSTGRES_MANAGER_OPS_PORT: String(ports.ops),
      HANGAR_POSTGRES_MANAGER_CHECK_MS: "250",
      HANGAR_POSTGRES_MANAGER_CREATE_TIMEOUT_S: "90",
      LOG_LEVEL: "info",
    },
  });
}

function logs(): string {
  const tail = (file: string) => {
    try {
      return readFileSync(file, "utf8").split("\n").slice(-20).join("\n");
    } catch {
      return "(none)";
    }
  };
  return `--- manager\n${tail(join(root, "manager.log"))}\n--- ${SOURCE}\n${tail(join(root, SOURCE, "agent.log"))}\n--- ${RESTORED}\n${tail(join(root, RESTORED, "agent.log"))}`;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${logs()}`);
    await sleep(200);
  }
}

async function sql<R extends pg.QueryResultRow>(cluster: Cluster, text: string): Promise<R[]> {
  const c = new pg.Client({
    host: members[cluster].address,
    port: ports.pg,
    user: "postgres",
    password: secrets[cluster].OPERATOR_PASSWORD,
    database: "postgres",
    connectionTimeoutMillis: 5_000,
  });
  c.on("error", () => undefined);
  await c.connect();
  try {
    return (await c.query<R>(text)).rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}

const ask = <Q, R>(subject: string, body: Q, timeoutMs = 60_000) =>
  sendCommand<Q, R>(nc, subject, body, timeoutMs);

async function eventTypes(cluster: Cluster): Promise<string[]> {
  const types: string[] = [];
  const decider = {
    ...pgClusterDecider,
    evolve: (s: ReturnType<typeof pgClusterDecider.initialState>, e: PgClusterEvent) => {
      types.push(e.type);
      return pgClusterDecider.evolve(s, e);
    },
  };
  await loadAggregate(store, pgclustersStream, decider, cluster);
  return types;
}

let backup: PgBackupView;
let target = "";

it("backs up a ready cluster's primary into PG_BACKUPS and records it", async () => {
  await until(
    "the source cluster ready",
    async () => {
      const view = await ask<unknown, PgClusterView>(subjects.postgres.status, { cluster: SOURCE }, 5_000);
      return view.status === "ready" || undefined;
    },
    60_000,
  );
  const none = await ask<unknown, PgBackupList>(subjects.postgres.backupList, { cluster: SOURCE });
  expect(none.backups).toEqual([]);
  // Without a backup there is nothing to restore from.
  await expect(
    ask<PgRestoreRequest, PgClusterView>(subjects.postgres.backupRestore, {
      command_id: "r0",
      cluster: SOURCE,
      name: "pgnone",
    }),
  ).rejects.toMatchObject({ code: "failed_precondition" });
  await sql(SOURCE, "CREATE TABLE rows (n int PRIMARY KEY, batch int NOT NULL)");
  backup = await ask<unknown, PgBackupView>(subjects.postgres.backupCreate, { cluster: SOURCE });
  expect(backup).toMatchObject({
    status: "completed",
    member_id: members[SOURCE].id,
    timeline: 1,
    error: null,
  });
  expect(backup.sha256).toMatch(/^[0-9a-f]{64}$/);
  expect(backup.stored_size).toBeLessThan(backup.size ?? 0);
  const listed = await ask<unknown, PgBackupList>(subjects.postgres.backupList, { cluster: SOURCE });
  expect(listed.backups).toEqual([backup]);
  expect(await eventTypes(SOURCE)).toEqual(expect.arrayContaining(["PgBackupStarted", "PgBackupCompleted"]));
  const metrics = await (await fetch(`http://127.0.0.1:${ports.ops}/metrics`)).text();
  expect(metrics).toMatch(new RegExp(`hangar_pg_backup_age_seconds\\{cluster="${SOURCE}"[^}]*\\} \\d`));
}, 90_000);

it("refuses a restore at a bad or future time, from an unknown cluster, or under a taken name", async () => {
  const restore = (body: Partial<PgRestoreRequest>) =>
    ask<PgRestoreRequest, PgClusterView>(subjects.postgres.backupRestore, {
      command_id: "rx",
      cluster: SOURCE,
      name: "pgx",
      ...body,
    });
  await expect(restore({ time: "yesterday" })).rejects.toMatchObject({ code: "invalid_argument" });
  await expect(restore({ time: "2999-01-01T00:00:00Z" })).rejects.toMatchObject({ code: "invalid_argument" });
  await expect(restore({ cluster: "pgnothere" })).rejects.toMatchObject({ code: "not_found" });
  await expect(restore({ name: SOURCE })).rejects.toBeInstanceOf(CommandError);
});

it("restores into a new cluster at a time between two batches: exactly the first batch (acceptance 5)", async () => {
  await sql(SOURCE, "INSERT INTO rows SELECT g, 1 FROM generate_series(1, 100) g");
  const [row] = await sql<{ t: Date }>(SOURCE, "SELECT clock_timestamp() AS t");
  target = (row as { t: Date }).t.toISOString();
  await sleep(50);
  await sql(SOURCE, "INSERT INTO rows SELECT g, 2 FROM generate_series(101, 200) g");
  // The restored cluster's member machine as a host agent would record it (no placement here).
  await recordCluster(RESTORED, RESTORE_ID, { from: SOURCE, backupId: backup.id, targetTime: target });
  const view = await ask<PgRestoreRequest, PgClusterView>(
    subjects.postgres.backupRestore,
    { command_id: RESTORE_ID, cluster: SOURCE, name: RESTORED, time: target },
    120_000,
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${logs()}`);
  });
  expect(view).toMatchObject({ name: RESTORED, status: "ready", primary_id: members[RESTORED].id });
  const rows = await sql<{ batch: number; count: number }>(
    RESTORED,
    "SELECT batch, count(*)::int AS count FROM rows GROUP BY batch ORDER BY batch",
  );
  expect(rows).toEqual([{ batch: 1, count: 100 }]);
  // A fresh timeline, and the source keeps both batches.
  expect(view.timeline).toBeGreaterThan(1);
  expect(await sql(SOURCE, "SELECT count(*)::int AS n FROM rows")).toEqual([{ n: 200 }]);
  expect(await eventTypes(RESTORED)).toEqual([
    "PgClusterCreateRequested",
    "PgMemberAdded",
    "PgMemberReady",
    "PgClusterReady",
  ]);
}, 150_000);
