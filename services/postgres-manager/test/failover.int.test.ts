// The manager against three real member agents (the bundle the member image carries, run as host
// processes on 127.0.0.1-3 against the host's postgresql-15, as libs/pg-member's test runs them):
// a recorded create driven to ready (bootstrap, replicas, ANY 1), the primary killed with SIGKILL
// and failed over (the manager, its own process, SIGKILLed mid-failover and started again) with no
// acknowledged commit lost and every step in PGCLUSTERS, the old primary
// rejoining as a replica, and a planned switchover. Machines are recorded in MACHINES as a host
// agent would (started, at the agent's address); no host agent, placement or volume service runs.
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
  type PgClusterView,
  type PgFailoverReply,
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

const CLUSTER = "pgc";
const CREATE_ID = "create-1";
const secrets = {
  OPERATOR_PASSWORD: randomBytes(12).toString("hex"),
  REPL_PASSWORD: randomBytes(12).toString("hex"),
  HANGAR_PG_AGENT_TOKEN: randomBytes(12).toString("hex"),
};
const ids = [0, 1, 2].map((i) => memberMachineId(CLUSTER, CREATE_ID, i));
const addressOf = new Map(ids.map((id, i) => [id, `127.0.0.${i + 1}`]));
let root = "";
let bundle = "";
let ports: { pg: number; router: number; control: number; ops: number };
let server: NatsServer;
let nc: NatsConnection;
let store: EventStore;
let manager: ChildProcess | undefined;
const agents = new Map<string, ChildProcess>();
const keyBase64 = randomBytes(32).toString("base64");
const keys = new MasterKeys(Buffer.from(keyBase64, "base64"));

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "hangar-pgm-failover-"));
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
  await recordSecrets();
  await recordCreate();
  for (const id of ids) await startAgent(id);
  await startManager();
}, 60_000);

afterAll(async () => {
  await stopManager("SIGTERM");
  for (const child of agents.values()) if (child.pid !== undefined) signalProcessTree(child.pid, "SIGKILL");
  store?.close();
  await nc?.close();
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

/** The cluster app's credentials, sealed as the create seals them. */
async function recordSecrets(): Promise<void> {
  const handler = new CommandHandler(store, secretsStream, secretsDecider);
  const scope = scopeOfApp(CLUSTER);
  const dataKey = newDataKey();
  const wrapped = keys.wrap(dataKey, scope);
  const id = appSecretsId(CLUSTER);
  await handler.handle(
    id,
    { type: "CreateDataKey", masterKeyId: wrapped.keyId, wrappedKey: wrapped.wrapped, atMs: Date.now() },
    { commandId: "key" },
  );
  const set = sealSecrets(dataKey, scope, Object.entries(secrets));
  await handler.handle(
    id,
    { type: "UpdateSecrets", set, unset: [], staged: false, atMs: Date.now() },
    { commandId: "set" },
  );
}

/** A create as the manager records it up to its members' machines, each started at its agent's address. */
async function recordCreate(): Promise<void> {
  const clusters = new CommandHandler(store, pgclustersStream, pgClusterDecider);
  await clusters.handle(
    CLUSTER,
    {
      type: "CreatePgCluster",
      cluster: CLUSTER,
      org: "personal",
      region: "local",
      vmSize: "shared-cpu-1x",
      cpus: 1,
      memoryMb: 256,
      volumeSizeGb: 1,
      initialSize: 3,
      image: "hangar/postgres-member:15",
      requestedAtMs: Date.now(),
      commandId: CREATE_ID,
    },
    { commandId: `create-${CREATE_ID}` },
  );
  const machines = new CommandHandler(store, machinesStream, machineDecider);
  for (const [i, id] of ids.entries()) {
    await clusters.handle(
      CLUSTER,
      { type: "AddMember", memberId: id, volumeId: `vol_000000000000000${i}`, hostId: "h1" },
      { commandId: `member-${id}` },
    );
    const aggregate = machineAggregateId(CLUSTER, id);
    await machines.handle(
      aggregate,
      {
        type: "CreateMachine",
        machineId: id,
        app: CLUSTER,
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
        privateIp: addressOf.get(id) ?? "",
        privateIpv6: "",
        port: 0,
        startTime: Date.now(),
        adopted: false,
      },
      { commandId: `started-${id}` },
    );
  }
}

async function startAgent(id: string): Promise<void> {
  const dir = join(root, id);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const out = openSync(join(dir, "agent.log"), "a");
  const child = spawn(process.execPath, [bundle], {
    detached: true,
    stdio: ["ignore", out, out],
    env: {
      PATH: process.env.PATH,
      FLY_MACHINE_ID: id,
      HANGAR_PG_DATA: join(dir, "postgresql"),
      HANGAR_PG_LISTEN: addressOf.get(id),
      HANGAR_PG_PORT: String(ports.pg),
      HANGAR_PG_ROUTER_PORT: String(ports.router),
      HANGAR_PG_CONTROL_PORT: String(ports.control),
      HANGAR_PG_FENCE_CHECK_MS: "250",
      HANGAR_PG_FENCE_AFTER_MS: "1500",
      HANGAR_PG_CONF: "shared_buffers=16MB;max_connections=30",
      ...secrets,
    },
  });
  agents.set(id, child);
}

/**
 * The manager as its own process (services/postgres-manager/src/main.ts), so a test can kill it
 * with SIGKILL mid-failover; resolves once it answers commands.
 */
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
      // The agents fence after 1.5 s without a majority (below): the wait covers that, a check and a margin.
      HANGAR_POSTGRES_MANAGER_CHECK_MS: "250",
      HANGAR_POSTGRES_MANAGER_PRIMARY_LOST_MS: "1000",
      HANGAR_POSTGRES_MANAGER_FENCE_WAIT_MS: "2250",
      HANGAR_POSTGRES_MANAGER_CREATE_TIMEOUT_S: "90",
      LOG_LEVEL: process.env.PGM_LOG ?? "info",
    },
  });
  await until("the manager answering", () => status().then(() => true), 30_000);
}

async function stopManager(signal: NodeJS.Signals): Promise<void> {
  const child = manager;
  manager = undefined;
  if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  await exited;
}

/** SIGKILL of the agent and its postgres, as a machine's processes die when it is killed. */
function killAgent(id: string): void {
  const child = agents.get(id);
  if (child?.pid !== undefined) signalProcessTree(child.pid, "SIGKILL");
  agents.delete(id);
}

function agentLogs(): string {
  return ids
    .map((id) => {
      try {
        return `--- ${id}\n${readFileSync(join(root, id, "agent.log"), "utf8")
          .split("\n")
          .slice(-15)
          .join("\n")}`;
      } catch {
        return `--- ${id}: no log`;
      }
    })
    .join("\n");
}

const status = () =>
  sendCommand<unknown, PgClusterView>(nc, subjects.postgres.status, { cluster: CLUSTER }, 10_000);

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${agentLogs()}`);
    await sleep(100);
  }
}

/** The event types recorded for the cluster, in order. */
async function eventTypes(): Promise<string[]> {
  const types: string[] = [];
  const decider = {
    ...pgClusterDecider,
    evolve: (s: ReturnType<typeof pgClusterDecider.initialState>, e: PgClusterEvent) => {
      types.push(e.type);
      return pgClusterDecider.evolve(s, e);
    },
  };
  await loadAggregate(store, pgclustersStream, decider, CLUSTER);
  return types;
}

function client(memberId: string): pg.Client {
  const c = new pg.Client({
    host: addressOf.get(memberId),
    port: ports.pg,
    user: "postgres",
    password: secrets.OPERATOR_PASSWORD,
    database: "postgres",
    connectionTimeoutMillis: 2_000,
  });
  c.on("error", () => undefined);
  return c;
}

it("drives a recorded create to ready: primary bootstrapped, two replicas streaming, ANY 1", async () => {
  const view = await until(
    "the cluster ready",
    async () => {
      const v = await status();
      return v.status === "ready" && v.members.every((m) => m.healthy) ? v : undefined;
    },
    60_000,
  );
  expect(view.primary_id).toBe(ids[0]);
  expect(view.members.map((m) => [m.id, m.role, m.state])).toEqual([
    [ids[0], "primary", "primary"],
    [ids[1], "replica", "replica"],
    [ids[2], "replica", "replica"],
  ]);
  expect(await eventTypes()).toEqual([
    "PgClusterCreateRequested",
    "PgMemberAdded",
    "PgMemberAdded",
    "PgMemberAdded",
    "PgMemberReady",
    "PgMemberReady",
    "PgMemberReady",
    "PgClusterReady",
  ]);
  const c = client(ids[0] as string);
  await c.connect();
  const sync = await c.query<{ synchronous_standby_names: string }>("show synchronous_standby_names");
  expect(sync.rows[0]?.synchronous_standby_names).toMatch(/^ANY 1 \(/);
  await c.query("create table numbers (n int primary key)");
  await c.end();
  // The ops server's figures, as the actor last saw the members.
  const metrics = await until(
    "the members' figures on /metrics",
    async () => {
      const text = await (await fetch(`http://127.0.0.1:${ports.ops}/metrics`)).text();
      return text.includes(`hangar_pg_member_role{cluster="${CLUSTER}",member="${ids[0]}",role="primary"`)
        ? text
        : undefined;
    },
    10_000,
  );
  expect(metrics).toMatch(
    new RegExp(`hangar_pg_member_role\\{[^}]*member="${ids[1]}",role="replica"[^}]*\\} 1`),
  );
  expect(metrics).toMatch(new RegExp(`hangar_pg_connections\\{[^}]*member="${ids[0]}"`));
  expect(metrics).toMatch(new RegExp(`hangar_pg_xact_commit_total\\{[^}]*member="${ids[0]}"[^}]*\\} [1-9]`));
  expect(metrics).toContain("# TYPE hangar_pg_replication_lag_seconds gauge");
}, 90_000);

it("fails a killed primary over, though the manager is killed mid-failover: one primary, every acknowledged commit kept", async () => {
  const old = ids[0] as string;
  const acked: number[] = [];
  const writer = client(old);
  await writer.connect();
  let n = 0;
  const writing = (async () => {
    for (;;) {
      n++;
      try {
        await writer.query("insert into numbers values ($1)", [n]);
        acked.push(n);
      } catch {
        return;
      }
    }
  })();
  await sleep(500);
  killAgent(old);
  // The manager dies with the failover in flight (its candidate chosen, the promote maybe sent): the
  // next one finds it in PGCLUSTERS and finishes it, with one primary.
  await until(
    "the candidate chosen",
    async () => ((await eventTypes()).includes("PgCandidateChosen") ? true : undefined),
    30_000,
  );
  await stopManager("SIGKILL");
  await startManager();
  await writing;
  await writer.end().catch(() => undefined);
  expect(acked.length).toBeGreaterThan(0);
  const types = await until(
    "the failover completed",
    async () => {
      const t = await eventTypes();
      return t.includes("PgFailoverCompleted") ? t : undefined;
    },
    30_000,
  );
  const view = await status();
  expect(view.primary_id).not.toBe(old);
  expect(view.timeline).toBe(2);
  expect(view.members.filter((m) => m.state === "primary").map((m) => m.id)).toEqual([view.primary_id]);
  expect(types.slice(8)).toEqual([
    "PgFailoverStarted",
    "PgCandidateChosen",
    "PgMemberPromoted",
    "PgMemberRepointed",
    "PgFailoverCompleted",
  ]);
  const reader = client(view.primary_id as string);
  await reader.connect();
  const rows = await reader.query<{ n: number }>("select n from numbers");
  await reader.end();
  const present = new Set(rows.rows.map((r) => r.n));
  expect(acked.filter((x) => !present.has(x))).toEqual([]);
  // The new primary takes writes.
  const w = client(view.primary_id as string);
  await w.connect();
  await w.query("insert into numbers values (-1)");
  await w.end();
}, 60_000);

it("rejoins the old primary as a replica when it comes back", async () => {
  const old = ids[0] as string;
  await startAgent(old);
  const view = await until(
    "the old primary replicating",
    async () => {
      const v = await status();
      const m = v.members.find((x) => x.id === old);
      return m?.role === "replica" && m.state === "replica" && m.healthy ? v : undefined;
    },
    60_000,
  );
  expect(view.members.filter((m) => m.state === "primary")).toHaveLength(1);
  expect(await eventTypes()).toContain("PgMemberRejoined");
}, 90_000);

it("switches over on request with no lost commit", async () => {
  const before = await status();
  const reply = await sendCommand<unknown, PgFailoverReply>(
    nc,
    subjects.postgres.failover,
    { cluster: CLUSTER },
    60_000,
  );
  expect(reply.old_primary_id).toBe(before.primary_id);
  expect(reply.new_primary_id).not.toBe(before.primary_id);
  expect(reply.timeline).toBe((before.timeline ?? 0) + 1);
  const c = client(reply.new_primary_id);
  await c.connect();
  const rows = await c.query<{ n: number }>("select count(*)::int as n from numbers where n = -1");
  expect(rows.rows[0]?.n).toBe(1);
  await c.query("insert into numbers values (-2)");
  await c.end();
  const after = await until(
    "one primary, every member healthy",
    async () => {
      const v = await status();
      return v.members.every((m) => m.healthy) ? v : undefined;
    },
    30_000,
  );
  expect(after.members.filter((m) => m.role === "primary").map((m) => m.id)).toEqual([reply.new_primary_id]);
}, 90_000);
