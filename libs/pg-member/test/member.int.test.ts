// Three member agents as host processes (the bundle the member image carries, run with this node)
// against the host's postgresql-15, each on its own loopback address (127.0.0.1-3) with the same
// ports, as members on 6PN share theirs: bootstrap, replicate, sync ANY 1, the router, the token,
// fencing of a primary cut off from the others, promote, follow and a pg_rewind rejoin.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, openSync, readdirSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "@hangar/testkit";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { bundleMemberAgent, lsnBytes, type Member, type MemberStatus } from "../src/mod.js";

const TOKEN = "agent-token-for-the-test";
const OPERATOR_PASSWORD = "operator-pw-for-the-test";
const ids = ["m1", "m2", "m3"] as const;
const members: Member[] = ids.map((id, i) => ({ id, address: `127.0.0.${i + 1}` }));
let root: string;
let bundle: string;
let ports: { pg: number; router: number; control: number };
const agents = new Map<string, ChildProcess>();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "hangar-pg-member-"));
  // postgres runs as its own OS user: it must reach the data folders below.
  await chmod(root, 0o755);
  bundle = join(root, "pg-member.mjs");
  await bundleMemberAgent(bundle);
  ports = { pg: await freePort(), router: await freePort(), control: await freePort() };
  for (const m of members) await startAgent(m);
  await Promise.all(
    members.map((m) =>
      until(`${m.id}'s control API`, () =>
        api(m, "GET", "/status")
          .then((r) => r.ok || undefined)
          .catch(() => undefined),
      ),
    ),
  );
});

afterAll(async () => {
  await Promise.all([...agents.keys()].map((id) => stopAgent(id)));
  if (root && process.env.KEEP_PG_MEMBER !== "1") await rm(root, { recursive: true, force: true });
});

async function startAgent(m: Member): Promise<void> {
  const dir = join(root, m.id);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const out = openSync(join(dir, "agent.log"), "a");
  const child = spawn(process.execPath, [bundle], {
    // Its own process group: the test stops (SIGSTOP) and ends the agent together with its postgres.
    detached: true,
    stdio: ["ignore", out, out],
    env: {
      PATH: process.env.PATH,
      FLY_MACHINE_ID: m.id,
      HANGAR_PG_DATA: join(dir, "postgresql"),
      HANGAR_PG_LISTEN: m.address,
      HANGAR_PG_PORT: String(ports.pg),
      HANGAR_PG_ROUTER_PORT: String(ports.router),
      HANGAR_PG_CONTROL_PORT: String(ports.control),
      HANGAR_PG_CONF: "shared_buffers=16MB;max_connections=30;fsync=on",
      // A busy CI host answers a peer slower than the 500 ms default now and then: no spurious fencing.
      HANGAR_PG_FENCE_CHECK_MS: "1000",
      OPERATOR_PASSWORD,
      REPL_PASSWORD: "repl-pw-for-the-test",
      HANGAR_PG_AGENT_TOKEN: TOKEN,
    },
  });
  agents.set(m.id, child);
}

/** SIGTERM to the agent (it stops postgres with a fast shutdown); its group killed if it is not gone in 20 s. */
async function stopAgent(id: string): Promise<number | null> {
  const child = agents.get(id);
  if (child?.pid === undefined) return null;
  agents.delete(id);
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  signalTree(child.pid, "SIGCONT");
  child.kill("SIGTERM");
  const timer = setTimeout(() => signalGroup(child, "SIGKILL"), 20_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

/**
 * Signals a process and every descendant: postgres' children each lead a session of their own, so
 * the agent's process group does not hold them.
 */
function signalTree(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  let children: string[] = [];
  try {
    children = readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim().split(" ").filter(Boolean),
    );
    process.kill(pid, signal);
  } catch {
    // Gone already.
  }
  for (const child of children) signalTree(Number(child), signal);
}

function signalGroup(child: ChildProcess | undefined, signal: NodeJS.Signals): void {
  try {
    if (child?.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // The group is gone already.
  }
}

function api(m: Member, method: string, path: string, body?: unknown, token = TOKEN): Promise<Response> {
  return fetch(`http://${m.address}:${ports.control}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(45_000),
  });
}

async function call(m: Member, method: string, path: string, body?: unknown): Promise<MemberStatus> {
  const res = await api(m, method, path, body);
  const json = await res.json();
  if (!res.ok)
    throw new Error(`${method} ${path} on ${m.id}: ${res.status} ${JSON.stringify(json)}\n${agentLog(m)}`);
  return json as MemberStatus;
}

function agentLog(m: Member): string {
  return readFileSync(join(root, m.id, "agent.log"), "utf8")
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

function client(host: string, port: number): pg.Client {
  const c = new pg.Client({
    host,
    port,
    user: "postgres",
    password: OPERATOR_PASSWORD,
    database: "postgres",
    connectionTimeoutMillis: 5_000,
  });
  c.on("error", () => undefined);
  return c;
}

async function sql<R extends pg.QueryResultRow>(host: string, port: number, text: string): Promise<R[]> {
  const c = client(host, port);
  await c.connect();
  try {
    return (await c.query<R>(text)).rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}

const [m1, m2, m3] = members as [Member, Member, Member];

it("refuses a wrong or missing token with 401 and does nothing", async () => {
  const wrong = await api(m1, "POST", "/bootstrap", { members }, "not-the-token");
  expect(wrong.status).toBe(401);
  expect(await wrong.json()).toMatchObject({ code: "unauthenticated" });
  const none = await fetch(`http://${m1.address}:${ports.control}/status`);
  expect(none.status).toBe(401);
  expect((await call(m1, "GET", "/status")).state).toBe("empty");
  const bad = await api(m1, "POST", "/configure", { members: [{ id: "x", address: "not-an-ip" }] });
  expect(bad.status).toBe(400);
  expect(await bad.json()).toMatchObject({ code: "invalid_argument" });
});

it("bootstraps a primary and two replicas with ANY 1 synchronous replication and replay lag", async () => {
  for (const m of members) await call(m, "POST", "/configure", { members });
  const primary = await call(m1, "POST", "/bootstrap", { members });
  expect(primary).toMatchObject({
    state: "primary",
    role: "primary",
    fenced: false,
    pg_up: true,
    timeline: 1,
  });
  expect((await call(m1, "POST", "/bootstrap", { members })).state).toBe("primary");
  const replicas = await Promise.all([m2, m3].map((m) => call(m, "POST", "/replicate", { primary: m1 })));
  for (const r of replicas)
    expect(r).toMatchObject({ state: "replica", role: "replica", rejoined_with: "basebackup" });
  await sql(
    m1.address,
    ports.pg,
    "CREATE TABLE t (n int primary key); INSERT INTO t SELECT generate_series(1, 100)",
  );
  const status = await until("replay lag on the primary", async () => {
    await sql(m1.address, ports.pg, "INSERT INTO t SELECT max(n) + 1 FROM t");
    const s = await call(m1, "GET", "/status");
    return s.replication.length === 2 && s.replication.every((r) => typeof r.replay_lag_ms === "number")
      ? s
      : undefined;
  });
  expect(status.sync_standby_names).toBe('ANY 1 ("m2", "m3")');
  expect(status.replication.map((r) => [r.member_id, r.state, r.sync_state])).toEqual([
    ["m2", "streaming", "quorum"],
    ["m3", "streaming", "quorum"],
  ]);
  expect(status.lsn_bytes.current).toBeGreaterThan(0);
  expect(status.majority).toBe(true);
  expect(status.peers_seen.sort()).toEqual(["m2", "m3"]);
});

it("routes a connection to any member's router port to the primary", async () => {
  for (const m of members) {
    const [row] = await until(`${m.id}'s router to reach the primary`, () =>
      sql<{ recovery: boolean; addr: string }>(
        m.address,
        ports.router,
        "SELECT pg_is_in_recovery() AS recovery, host(inet_server_addr()) AS addr",
      ).catch(() => undefined),
    );
    expect(row).toEqual({ recovery: false, addr: m1.address });
  }
});

it("fences a primary that lost the majority: writes refused, a commit waiting for a standby never acknowledged", async () => {
  const writer = client(m1.address, ports.pg);
  await writer.connect();
  // The replicas' agents and postgres stop answering (their process groups are stopped): a partition.
  for (const id of ["m2", "m3"]) signalTree(agents.get(id)?.pid, "SIGSTOP");
  let acknowledged = false;
  const waiting = writer.query("INSERT INTO t VALUES (-1)").then(
    () => {
      acknowledged = true;
    },
    (error: Error) => error,
  );
  const fenced = await until("the primary to fence", async () => {
    const s = await call(m1, "GET", "/status");
    return s.fenced && s.pg_up ? s : undefined;
  });
  expect(fenced).toMatchObject({ role: "primary", majority: false, peers_seen: [] });
  expect(await waiting).toBeInstanceOf(Error);
  expect(acknowledged).toBe(false);
  await expect(sql(m1.address, ports.pg, "INSERT INTO t VALUES (-2)")).rejects.toThrow(/read-only/);
  await writer.end().catch(() => undefined);
  for (const id of ["m2", "m3"]) signalTree(agents.get(id)?.pid, "SIGCONT");
});

it("promotes a replica, the other follows, the old primary rejoins with pg_rewind, and writes reach all three", async () => {
  const promoted = await call(m2, "POST", "/promote");
  expect(promoted).toMatchObject({ state: "primary", fenced: false, timeline: 2 });
  const followed = await call(m3, "POST", "/follow", { primary: m2 });
  expect(followed).toMatchObject({ state: "replica", rejoined_with: "follow" });
  const rejoined = await call(m1, "POST", "/replicate", { primary: m2 });
  expect(rejoined).toMatchObject({ state: "replica", fenced: false, rejoined_with: "rewind", timeline: 2 });
  // A router sends new connections to the new primary.
  const [row] = await until("m1's router to reach the new primary", () =>
    sql<{ addr: string }>(
      m1.address,
      ports.router,
      "SELECT host(inet_server_addr()) AS addr WHERE NOT pg_is_in_recovery()",
    ).catch(() => undefined),
  );
  expect(row).toEqual({ addr: m2.address });
  await sql(m2.address, ports.pg, "INSERT INTO t VALUES (1000000)");
  for (const m of members) {
    await until(`the row on ${m.id}`, async () => {
      const rows = await sql<{ n: number }>(m.address, ports.pg, "SELECT n FROM t WHERE n = 1000000");
      return rows.length === 1 || undefined;
    });
  }
  const status = await call(m2, "GET", "/status");
  expect(status.sync_standby_names).toBe('ANY 1 ("m1", "m3")');
  expect(status.replication.map((r) => r.member_id)).toEqual(["m1", "m3"]);
  expect(
    (await sql<{ n: number }>(m2.address, ports.pg, "SELECT count(*)::int AS n FROM t WHERE n = -2"))[0]?.n,
  ).toBe(0);
});

it("a replica that streamed a restarted old primary's WAL past the new primary's fork rejoins with pg_rewind when told to follow", async () => {
  // m2 (primary, timeline 2) dies with its agent, as a machine does; m1 is promoted (timeline 3).
  await until("m1 and m3 to hold all of m2's WAL", async () => {
    const [a, b, p] = await Promise.all([m1, m3, m2].map((m) => call(m, "GET", "/status")));
    const end = p?.lsn_bytes.current ?? 0;
    return a?.lsn_bytes.replay === end && b?.lsn_bytes.replay === end ? true : undefined;
  });
  signalTree(agents.get("m2")?.pid, "SIGKILL");
  agents.delete("m2");
  expect(await call(m1, "POST", "/promote")).toMatchObject({ state: "primary", timeline: 3 });
  const [history] = await sql<{ text: string }>(
    m1.address,
    ports.pg,
    "SELECT pg_read_file('pg_wal/00000003.history') AS text",
  );
  const forkLine = history?.text.split("\n").find((l) => l.startsWith("2\t")) ?? "";
  const fork = lsnBytes(forkLine.split("\t")[1] ?? null) ?? Number.POSITIVE_INFINITY;
  // m2 comes back: its postgres recovers from the crash and writes on timeline 2 (fenced, no client
  // write), and m3, still pointed at it, streams that WAL: WAL that timeline 3 never had.
  await startAgent(m2);
  await until(
    "m3 to stream m2's WAL past the fork",
    async () => ((await call(m3, "GET", "/status")).lsn_bytes.receive ?? 0) > fork || undefined,
    30_000,
  );
  const followed = await call(m3, "POST", "/follow", { primary: m1 });
  expect(followed).toMatchObject({ state: "replica", rejoined_with: "rewind", timeline: 3 });
  expect(readFileSync(join(root, "m3", "agent.log"), "utf8")).toContain("rejoining with pg_rewind");
  await sql(m1.address, ports.pg, "INSERT INTO t VALUES (2000000)");
  await until("the row on m3", async () => {
    const rows = await sql<{ n: number }>(m3.address, ports.pg, "SELECT n FROM t WHERE n = 2000000");
    return rows.length === 1 || undefined;
  });
  // m2 rejoins the new primary too, as the manager would have it.
  expect(await call(m2, "POST", "/replicate", { primary: m1 })).toMatchObject({ rejoined_with: "rewind" });
});

it("restarts a crashed postgres and stops cleanly on SIGTERM", async () => {
  const pidFile = join(root, "m3", "postgresql", "postmaster.pid");
  const crashes = (await call(m3, "GET", "/status")).pg_crashes;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  process.kill(pid, "SIGKILL");
  const back = await until("m3's postgres to come back", async () => {
    const s = await call(m3, "GET", "/status");
    const now = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8").split("\n")[0]) : pid;
    return s.pg_crashes > crashes && s.pg_up && now !== pid ? s : undefined;
  });
  expect(back.role).toBe("replica");
  expect(await stopAgent("m3")).toBe(0);
  expect(existsSync(pidFile)).toBe(false);
});
