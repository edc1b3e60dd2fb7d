// The manager's cmd.postgres.* handlers against a real nats-server (secured: the manager connects as
// its own NATS user, so its permissions are tested too) and Postgres: every refusal with its platform
// code and nothing recorded for it, list read from the read model, and no service but the gateway
// may ask. The cluster here is recorded directly (its one member's machine never exists), so no
// member agent is involved.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  appDecider,
  appsStream,
  machinesStream,
  type PgClusterCommand,
  pgClusterDecider,
  pgclustersStream,
  secretsStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream } from "@hangar/eventstore";
import { MasterKeys } from "@hangar/secrets";
import {
  CommandError,
  type NatsCredentials,
  natsAuthOptions,
  natsUsers,
  OPERATOR_USER,
  type PgClusterList,
  type PgClusterView,
  type PgCreateRequest,
  sendCommand,
  subjects,
  writeNatsCredentials,
} from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { type NatsServer, startNatsServer, testDatabase } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { PostgresManager } from "../src/manager.js";

// A nats-server of its own: the manager uses the platform's fixed stream and bucket names.
let server: NatsServer;
let nc: NatsConnection;
let store: EventStore;
let manager: PostgresManager | undefined;
let managerNc: NatsConnection | undefined;
let creds: NatsCredentials;
let credsDir = "";
const dbName = `pgm_cmd_${process.pid}`;

const create = (over: Partial<PgCreateRequest> = {}): PgCreateRequest => ({
  command_id: randomBytes(6).toString("hex"),
  name: "db1",
  org: "personal",
  region: "local",
  vm_size: "shared-cpu-1x",
  volume_size_gb: 1,
  initial_size: 1,
  ...over,
});

const ask = <R>(verb: keyof typeof subjects.postgres, body: unknown) =>
  sendCommand<unknown, R>(nc, subjects.postgres[verb], body, 10_000);

/** The refusal of a request, or a failure of the test when it was answered. */
const refusal = (p: Promise<unknown>): Promise<CommandError> =>
  p.then(
    () => new CommandError("not refused", "internal"),
    (e: unknown) => e as CommandError,
  );

const lastSeq = async () => (await store.jsm.streams.info(pgclustersStream.name)).state.last_seq;

/** A ready one-member cluster `name`, recorded as the manager's create would. */
async function recordCluster(name: string, org: string): Promise<void> {
  const handler = new CommandHandler(store, pgclustersStream, pgClusterDecider);
  const commands: PgClusterCommand[] = [
    {
      type: "CreatePgCluster",
      cluster: name,
      org,
      region: "local",
      vmSize: "shared-cpu-1x",
      cpus: 1,
      memoryMb: 256,
      volumeSizeGb: 1,
      initialSize: 1,
      image: "hangar/postgres-member:15",
      requestedAtMs: Date.now(),
      commandId: `${name}-create`,
    },
    { type: "AddMember", memberId: `${name}m0`, volumeId: "vol_0000000000000000", hostId: "h1" },
    { type: "MarkMemberReady", memberId: `${name}m0`, role: "primary", timeline: 1 },
    { type: "MarkClusterReady", primaryId: `${name}m0` },
  ];
  for (const [i, command] of commands.entries())
    await handler.handle(name, command, { commandId: `${name}-${i}` });
}

beforeAll(async () => {
  credsDir = await mkdtemp(join(tmpdir(), "hangar-pgm-creds-"));
  creds = await writeNatsCredentials(credsDir, natsUsers([]));
  server = await startNatsServer({ authorization: creds.authorization });
  nc = await connectAs(OPERATOR_USER);
  store = await EventStore.connect(nc);
  for (const stream of [pgclustersStream, appsStream, machinesStream, secretsStream])
    await ensureStream(store.jsm, stream);
  await recordCluster("db1", "personal");
  await new CommandHandler(store, appsStream, appDecider).handle(
    "web",
    { type: "CreateApp", name: "web", orgSlug: "personal" },
    { commandId: "create-web" },
  );
  await new CommandHandler(store, appsStream, appDecider).handle(
    "taken",
    { type: "CreateApp", name: "taken", orgSlug: "personal" },
    { commandId: "create-taken" },
  );
  managerNc = await connectAs("postgres-manager");
  manager = await PostgresManager.start({
    nc: managerNc,
    store: await EventStore.connect(managerNc),
    logger: createLogger("postgres-manager-test", { level: "silent" }),
    registry: new Registry(),
    keys: new MasterKeys(randomBytes(32)),
    image: "hangar/postgres-member:15",
    agentPort: 5500,
    timings: { checkMs: 200, primaryLostMs: 2_000, fenceWaitMs: 4_000, createTimeoutMs: 60_000 },
    leaseTtlMs: 1_500,
    databaseUrl: await testDatabase(inject("postgresUrl"), dbName),
  });
});

afterAll(async () => {
  await manager?.stop();
  await managerNc?.close();
  store?.close();
  await nc?.close();
  await server?.stop();
  const admin = new pg.Client({ connectionString: inject("postgresUrl") });
  await admin.connect();
  await admin.query(`drop database if exists ${pg.escapeIdentifier(dbName)} with (force)`);
  await admin.end();
  if (credsDir) await rm(credsDir, { recursive: true, force: true });
});

/** A connection to the test's nats-server as one of the platform's NATS users. */
function connectAs(user: string): Promise<NatsConnection> {
  return connect({ servers: server.url, ...natsAuthOptions({ credsFile: creds.credsFile(user), user }) });
}

describe("cmd.postgres.create", () => {
  it.each([
    ["a name that is not an app name", { name: "Bad_Name" }, /invalid cluster name/],
    ["no command id", { command_id: "" }, /command_id/],
    ["an unknown vm size", { name: "db2", vm_size: "huge" }, /vm size/],
    ["too many members", { name: "db2", initial_size: 9 }, /initial cluster size/],
    ["a volume of 0 GB", { name: "db2", volume_size_gb: 0 }, /size/],
    ["a bad org", { name: "db2", org: "Not An Org" }, /org/],
  ])("refuses %s with invalid_argument and records nothing", async (_what, over, message) => {
    const before = await lastSeq();
    const err = await refusal(ask("create", create(over as Partial<PgCreateRequest>)));
    expect(err.code).toBe("invalid_argument");
    expect(err.message).toMatch(message);
    expect(await lastSeq()).toBe(before);
  });

  it("refuses a second create of an existing cluster's name, and an app's name, with already_exists", async () => {
    const before = await lastSeq();
    const again = await refusal(ask("create", create({ name: "db1" })));
    expect(again.code).toBe("already_exists");
    const app = await refusal(ask("create", create({ name: "taken" })));
    expect(app.code).toBe("already_exists");
    expect(app.message).toMatch(/taken by an app/);
    expect(await lastSeq()).toBe(before);
  });

  it("refuses a request that is not JSON", async () => {
    const reply = await nc.request(subjects.postgres.create, "{not json", { timeout: 5_000 });
    expect(reply.json()).toEqual({ error: { code: "invalid_argument", message: "request is not JSON" } });
  });
});

describe("cmd.postgres.status / list", () => {
  it("answers a cluster with its members, unreachable when their agent does not answer", async () => {
    const view = await ask<PgClusterView>("status", { cluster: "db1" });
    expect(view).toMatchObject({
      name: "db1",
      org: "personal",
      status: "ready",
      primary_id: "db1m0",
      timeline: 1,
    });
    expect(view.members).toEqual([
      expect.objectContaining({
        id: "db1m0",
        role: "primary",
        state: "unreachable",
        healthy: false,
        lsn: null,
      }),
    ]);
  });

  it("refuses an unknown cluster with not_found and a malformed name with invalid_argument", async () => {
    expect((await refusal(ask("status", { cluster: "nope" }))).code).toBe("not_found");
    expect((await refusal(ask("status", { cluster: "a.b" }))).code).toBe("invalid_argument");
    expect((await refusal(ask("status", {}))).code).toBe("invalid_argument");
    for (const verb of ["attach", "detach", "failover", "destroy"] as const) {
      expect((await refusal(ask(verb, { cluster: "nope", app: "web" }))).code, verb).toBe("not_found");
    }
  });

  it("lists from the read model, by org", async () => {
    let list: PgClusterList = { clusters: [] };
    for (let i = 0; i < 100 && list.clusters.length === 0; i++) {
      list = await ask<PgClusterList>("list", { org: "personal" });
      if (list.clusters.length === 0) await sleep(100);
    }
    expect(list.clusters.map((c) => [c.name, c.status, c.members.map((m) => m.id)])).toEqual([
      ["db1", "ready", ["db1m0"]],
    ]);
    expect(await ask<PgClusterList>("list", { org: "other" })).toEqual({ clusters: [] });
  });
});

describe("who may ask", () => {
  it("refuses every service but the gateway (and the operator) at the NATS server", async () => {
    for (const user of ["volume", "scheduler", "proxy"]) {
      const other = await connectAs(user);
      try {
        const err = await refusal(sendCommand(other, subjects.postgres.list, {}, 2_000));
        expect(String(err), user).toMatch(/permission/i);
      } finally {
        await other.close();
      }
    }
    const gateway = await connectAs("gateway");
    try {
      expect(
        await sendCommand<unknown, PgClusterList>(gateway, subjects.postgres.list, { org: "nobody" }),
      ).toEqual({
        clusters: [],
      });
    } finally {
      await gateway.close();
    }
  });
});

describe("cmd.postgres.attach / detach / failover", () => {
  it("refuses before asking the primary: unknown app, bad names, an app not attached", async () => {
    const before = await lastSeq();
    expect((await refusal(ask("attach", { cluster: "db1", app: "ghost" }))).code).toBe("not_found");
    const badDb = await refusal(
      ask("attach", { cluster: "db1", app: "web", database_name: "Robert'); drop" }),
    );
    expect(badDb.code).toBe("invalid_argument");
    const badVar = await refusal(ask("attach", { cluster: "db1", app: "web", variable_name: "NOT-A-VAR" }));
    expect(badVar.code).toBe("invalid_argument");
    expect((await refusal(ask("detach", { cluster: "db1", app: "web" }))).code).toBe("not_found");
    expect(await lastSeq()).toBe(before);
  });

  it("answers unavailable when the primary's agent cannot be reached, recording nothing", async () => {
    const before = await lastSeq();
    expect((await refusal(ask("attach", { cluster: "db1", app: "web" }))).code).toBe("unavailable");
    expect(await lastSeq()).toBe(before);
  });

  it("refuses a switchover of a cluster with no replica", async () => {
    const err = await refusal(ask("failover", { cluster: "db1" }));
    expect(err.code).toBe("failed_precondition");
    expect(err.message).toMatch(/no replica/);
  });
});
