// Backups at the member agent + manager store level (docs/postgres.md "Backups"): two member agents
// as host processes (the bundle the member image carries) against the host's postgresql-15, and a
// real nats-server's object store. WAL archived through the agent's archive_command into its outbox
// and drained into PG_BACKUPS, a base backup streamed from the primary into the store, and a
// point-in-time restore into an empty member (acceptance 5): batch 1, time T, batch 2, restore at T
// holds exactly batch 1. Refusals: a bad token, a bad WAL name, a restore into a member with data,
// a damaged stored object.
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { openSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { bundleMemberAgent } from "@hangar/pg-member";
import { freePort, type NatsServer, startNatsServer } from "@hangar/testkit";
import { Objm } from "@nats-io/obj";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { BACKUPS_BUCKET, BackupStore, objectNames } from "../src/backup-store.js";
import {
  type AgentEndpoint,
  type BaseBackupFacts,
  drainWal,
  restoreToMember,
  switchWal,
  takeBaseBackup,
} from "../src/backup-transfer.js";

const TOKEN = "backup-test-agent-token";
const CLUSTER = "srcdb";
const passwords = {
  src: { operator: "src-operator-pw", repl: "src-repl-pw" },
  dst: { operator: "dst-operator-pw", repl: "dst-repl-pw" },
};
const addresses = { src: "127.0.0.21", dst: "127.0.0.22" } as const;
type Name = keyof typeof addresses;

let root: string;
let bundle: string;
let ports: { pg: number; router: number; control: number };
let server: NatsServer;
let nc: NatsConnection;
let store: BackupStore;
const agents = new Map<Name, ChildProcess>();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "hangar-pg-backup-"));
  await chmod(root, 0o755);
  bundle = join(root, "pg-member.mjs");
  await bundleMemberAgent(bundle);
  ports = { pg: await freePort(), router: await freePort(), control: await freePort() };
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  store = await BackupStore.open(nc);
  for (const name of ["src", "dst"] as const) await startAgent(name);
  for (const name of ["src", "dst"] as const)
    await until(`${name}'s control API`, () =>
      api(name, "GET", "/status")
        .then((r) => r.ok || undefined)
        .catch(() => undefined),
    );
}, 60_000);

afterAll(async () => {
  await Promise.all([...agents.keys()].map((name) => stopAgent(name)));
  await nc?.close();
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

async function startAgent(name: Name): Promise<void> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const out = openSync(join(dir, "agent.log"), "a");
  const child = spawn(process.execPath, [bundle], {
    detached: true,
    stdio: ["ignore", out, out],
    env: {
      PATH: process.env.PATH,
      FLY_MACHINE_ID: name,
      HANGAR_PG_DATA: join(dir, "postgresql"),
      HANGAR_PG_LISTEN: addresses[name],
      HANGAR_PG_PORT: String(ports.pg),
      HANGAR_PG_ROUTER_PORT: String(ports.router),
      HANGAR_PG_CONTROL_PORT: String(ports.control),
      HANGAR_PG_CONF: "shared_buffers=16MB;max_connections=30",
      OPERATOR_PASSWORD: passwords[name].operator,
      REPL_PASSWORD: passwords[name].repl,
      HANGAR_PG_AGENT_TOKEN: TOKEN,
    },
  });
  agents.set(name, child);
}

async function stopAgent(name: Name): Promise<void> {
  const child = agents.get(name);
  agents.delete(name);
  if (child?.pid === undefined || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => {
    try {
      process.kill(-(child.pid as number), "SIGKILL");
    } catch {
      // Gone already.
    }
  }, 20_000);
  await exited;
  clearTimeout(timer);
}

function endpoint(name: Name): AgentEndpoint {
  return { address: addresses[name], port: ports.control, token: TOKEN };
}

function api(name: Name, method: string, path: string, body?: unknown, token = TOKEN): Promise<Response> {
  return fetch(`http://${addresses[name]}:${ports.control}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(60_000),
  });
}

function agentLog(name: Name): string {
  return readFileSync(join(root, name, "agent.log"), "utf8")
    .split("\n")
    .slice(-30)
    .join("\n");
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function sql<R extends pg.QueryResultRow>(name: Name, text: string): Promise<R[]> {
  const c = new pg.Client({
    host: addresses[name],
    port: ports.pg,
    user: "postgres",
    password: passwords[name].operator,
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

let backup: BaseBackupFacts;
let target: string;

it("refuses a wrong token and a WAL name outside the outbox's names", async () => {
  expect((await api("src", "GET", "/wal", undefined, "wrong")).status).toBe(401);
  expect((await api("src", "GET", "/basebackup?id=x", undefined, "wrong")).status).toBe(401);
  const bad = await api("src", "GET", "/wal/..%2Fpostgresql%2Fpg_hba.conf");
  expect(bad.status).toBe(400);
  expect(await bad.json()).toMatchObject({ code: "invalid_argument" });
  // An empty member has no primary to back up.
  expect((await api("dst", "GET", "/basebackup?id=b0")).status).toBe(409);
});

it("archives WAL through the outbox into PG_BACKUPS and streams a base backup into the store", async () => {
  const boot = await api("src", "POST", "/bootstrap", { members: [{ id: "src", address: addresses.src }] });
  expect(boot.status, agentLog("src")).toBe(200);
  await sql("src", "CREATE TABLE rows (n int PRIMARY KEY, batch int NOT NULL)");
  backup = await takeBaseBackup(endpoint("src"), store, CLUSTER, "b1");
  expect(backup).toMatchObject({ name: objectNames.base(CLUSTER, "b1"), timeline: 1 });
  expect(backup.start_lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
  expect(backup.sha256).toMatch(/^[0-9a-f]{64}$/);
  expect(backup.stored_size).toBeLessThan(backup.size);
  // postgres put the backup's WAL in the outbox before the tar ended; the drain moved it.
  const archived = await store.walFiles(CLUSTER);
  expect(archived.some((f) => f.endsWith(".backup"))).toBe(true);
  expect(await (await api("src", "GET", "/wal")).json()).toEqual({ files: [] });
});

it("restores into a new member at a time between two batches: exactly the first batch (acceptance 5)", async () => {
  await sql("src", "INSERT INTO rows SELECT g, 1 FROM generate_series(1, 100) g");
  const [{ t }] = (await sql<{ t: Date }>("src", "SELECT clock_timestamp() AS t")) as [{ t: Date }];
  target = t.toISOString();
  await sleep(50);
  await sql("src", "INSERT INTO rows SELECT g, 2 FROM generate_series(101, 200) g");
  await switchWal(endpoint("src"));
  await until("the switched segment in the outbox", async () => {
    const { files } = (await (await api("src", "GET", "/wal")).json()) as { files: string[] };
    return files.length > 0 || undefined;
  });
  expect(await drainWal(endpoint("src"), store, CLUSTER)).toBeGreaterThan(0);

  const { status, bytes } = await restoreToMember(
    endpoint("dst"),
    store,
    CLUSTER,
    { id: "b1", ...backup },
    target,
  );
  expect(status, agentLog("dst")).toMatchObject({
    state: "primary",
    role: "primary",
    fenced: false,
    pg_up: true,
    timeline: 2,
  });
  expect(bytes).toBeGreaterThan(backup.size);
  const rows = await sql<{ batch: number; count: number; max: number }>(
    "dst",
    "SELECT batch, count(*)::int AS count, max(n) AS max FROM rows GROUP BY batch ORDER BY batch",
  );
  expect(rows).toEqual([{ batch: 1, count: 100, max: 100 }]);
  // The new cluster's secrets replaced the source's passwords, and it takes writes as a primary.
  await expect(sql("dst", "INSERT INTO rows VALUES (1000, 3)")).resolves.toEqual([]);
  const c = new pg.Client({
    host: addresses.dst,
    port: ports.pg,
    user: "postgres",
    password: passwords.src.operator,
    database: "postgres",
  });
  c.on("error", () => undefined);
  await expect(c.connect()).rejects.toThrow(/password authentication failed/);
});

it("refuses a restore into a member with data, and a damaged stored object fails the restore with why", async () => {
  const full = await api("src", "PUT", "/restore/wal/000000010000000000000001");
  expect(full.status).toBe(409);
  expect(await full.json()).toMatchObject({ code: "failed_precondition" });
  // A WAL object whose bytes no longer match its recorded sha256.
  const [first] = await store.walFiles(CLUSTER);
  const name = objectNames.wal(CLUSTER, first as string);
  const bucket = await new Objm(nc).open(BACKUPS_BUCKET);
  const info = await bucket.info(name);
  const forged = await promisify(gzip)(Buffer.from("not the segment"));
  await bucket.put({ name, metadata: { ...(info?.metadata ?? {}) } }, new Blob([forged]).stream());
  await expect(store.readWal(CLUSTER, first as string)).rejects.toThrow(
    /sha256 .* stored: the stored copy is damaged/,
  );
  expect(createHash("sha256").update("not the segment").digest("hex")).not.toBe(info?.metadata?.sha256);
});
