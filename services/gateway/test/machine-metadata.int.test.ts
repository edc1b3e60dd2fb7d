// Machine versions and metadata through a gateway on a real nats-server: the MACHINES log says what
// each call recorded. Placement is a responder that puts every machine on host h0; the host agent's
// report of a start is sent as its command, so the machine is "started" with a pid that a restart
// would change.
import { randomBytes } from "node:crypto";
import { mintToken } from "@hangar/auth";
import {
  type AuditEntry,
  appsStream,
  machineAggregateId,
  machineDecider,
  machinesStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream } from "@hangar/eventstore";
import { type PlaceRequest, type PlaceResult, serveCommands, subjects } from "@hangar/service";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvIdempotency } from "../src/idempotency/kv-idempotency.js";
import { type GatewayReplica, startGatewayReplica } from "./gateway-replica.js";

const ORG_OF: Record<string, string> = { web: "acme", shop: "other" };
const key = new Uint8Array(randomBytes(32));
const acme = mintToken(key, { id: "tok_acme", kind: "org", org: "acme" });
const acmeReadOnly = mintToken(key, { id: "tok_acme_ro", kind: "org", org: "acme", readOnly: true });
const other = mintToken(key, { id: "tok_other", kind: "org", org: "other" });

let server: NatsServer;
let agent: NatsConnection;
let store: EventStore;
let gateway: GatewayReplica;
const audited: AuditEntry[] = [];
let machineId = "";
let firstVersion = "";

async function call(
  method: string,
  path: string,
  opts: { body?: unknown; token?: string; key?: string } = {},
) {
  const res = await fetch(`${gateway.url}/v1/apps${path}`, {
    method,
    headers: {
      authorization: `Bearer ${opts.token ?? acme}`,
      "content-type": "application/json",
      ...(opts.key ? { "idempotency-key": opts.key } : {}),
    },
    ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    json: text ? (JSON.parse(text) as unknown) : undefined,
  };
}

/** The types of the machine's events in the MACHINES log, oldest first. */
async function logged(): Promise<string[]> {
  const { events } = await store.readAggregate(machinesStream, machineAggregateId("web", machineId));
  return events.map((e) => e.event.type);
}

beforeAll(async () => {
  server = await startNatsServer();
  agent = await connect({ servers: server.url });
  store = await EventStore.connect(agent);
  for (const s of [appsStream, machinesStream]) await ensureStream(store.jsm, s);
  serveCommands<PlaceRequest, PlaceResult>(agent, subjects.place, "placement", async (req) => ({
    host_id: "h0",
    region: req.region,
  }));
  gateway = await startGatewayReplica({
    natsUrl: server.url,
    key,
    directory: () => ({
      orgOf: (app) => ORG_OF[app],
      exists: (o) => o === "acme" || o === "other",
      limitsOf: () => ({}),
    }),
    extra: async ({ nc }) => ({
      idempotency: await KvIdempotency.open(nc),
      audit: {
        record: async (entry) => {
          audited.push(entry);
        },
        query: async () => [],
      },
    }),
  });
  await gateway.commands.createApp("web", "acme");
  await gateway.commands.createApp("shop", "other");
  const created = await call("POST", "/web/machines", {
    body: { config: { image: "nginx", metadata: { fly_process_group: "app" } } },
  });
  expect(created.status).toBe(200);
  ({ id: machineId, instance_id: firstVersion } = created.json as { id: string; instance_id: string });
  // The host agent's report: the machine runs as pid 4242.
  await new CommandHandler(store, machinesStream, machineDecider).handle(
    machineAggregateId("web", machineId),
    {
      type: "RecordStarted",
      hostId: "h0",
      pid: 4242,
      privateIp: "127.77.0.9",
      privateIpv6: "",
      port: 8080,
      startTime: 1,
      adopted: false,
    },
    { commandId: `started-${machineId}` },
  );
  await gateway.catalog.waitFor(
    machineAggregateId("web", machineId),
    (m) => m.state.status === "started",
    10_000,
  );
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  await agent?.close();
  await server?.stop();
});

describe("machine metadata", () => {
  it("sets a key in place: 204, shown by GET metadata and GET machine, same version, no restart", async () => {
    const before = await logged();
    const set = await call("POST", `/web/machines/${machineId}/metadata/role`, {
      body: { value: "primary" },
    });
    expect(set.status).toBe(204);
    expect(set.text).toBe("");
    expect((await call("GET", `/web/machines/${machineId}/metadata`)).json).toEqual({
      fly_process_group: "app",
      role: "primary",
    });
    const machine = (await call("GET", `/web/machines/${machineId}`)).json as {
      state: string;
      instance_id: string;
      config: { image: string; metadata: Record<string, string> };
    };
    expect(machine.state).toBe("started");
    expect(machine.instance_id).toBe(firstVersion);
    expect(machine.config).toMatchObject({
      image: "nginx",
      metadata: { fly_process_group: "app", role: "primary" },
    });
    // One event, and nothing a host agent would stop, restart or start the machine for.
    expect(await logged()).toEqual([...before, "MachineMetadataSet"]);
    const record = gateway.catalog.machine(machineAggregateId("web", machineId));
    expect(record?.state.pid).toBe(4242);
  });

  it("deletes a key in place with 204; deleting it again is a 204 that records nothing", async () => {
    await call("POST", `/web/machines/${machineId}/metadata/zone`, { body: { value: "a" } });
    const before = await logged();
    const deleted = await call("DELETE", `/web/machines/${machineId}/metadata/zone`);
    expect(deleted.status).toBe(204);
    expect(await logged()).toEqual([...before, "MachineMetadataDeleted"]);
    expect((await call("DELETE", `/web/machines/${machineId}/metadata/zone`)).status).toBe(204);
    expect(await logged()).toEqual([...before, "MachineMetadataDeleted"]);
    expect((await call("GET", `/web/machines/${machineId}/metadata`)).json).not.toHaveProperty("zone");
  });

  it("filters the machine list by metadata, and summary=true leaves out config, checks and events", async () => {
    const match = (await call("GET", "/web/machines?metadata.role=primary")).json as { id: string }[];
    expect(match.map((m) => m.id)).toEqual([machineId]);
    expect((await call("GET", "/web/machines?metadata.role=replica")).json).toEqual([]);
    const [summary] = (await call("GET", "/web/machines?summary=true")).json as Record<string, unknown>[];
    expect(summary).toMatchObject({ id: machineId, state: "started", instance_id: firstVersion });
    for (const field of ["config", "checks", "events", "host_status"])
      expect(summary).not.toHaveProperty(field);
  });

  it("refuses a bad key with Fly's 400 body, and an unknown machine with 404", async () => {
    const bad = await call("POST", `/web/machines/${machineId}/metadata/not%20ok`, { body: { value: "v" } });
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({ status: "invalid_argument", error: expect.stringContaining("metadata key") });
    const missing = await call("POST", "/web/machines/0000000000000f/metadata/role", {
      body: { value: "v" },
    });
    expect(missing.status).toBe(404);
    expect((missing.json as { status: string }).status).toBe("not_found");
    expect((await call("GET", "/web/machines/0000000000000f/versions")).status).toBe(404);
  });

  it("lets a read-only token read but not change metadata (403), and another org's token sees nothing (404)", async () => {
    const before = await logged();
    expect((await call("GET", `/web/machines/${machineId}/metadata`, { token: acmeReadOnly })).status).toBe(
      200,
    );
    expect((await call("GET", `/web/machines/${machineId}/versions`, { token: acmeReadOnly })).status).toBe(
      200,
    );
    for (const [method, body] of [
      ["POST", { value: "x" }],
      ["DELETE", undefined],
    ] as const) {
      const path = `/web/machines/${machineId}/metadata/role`;
      expect((await call(method, path, { body, token: acmeReadOnly })).status).toBe(403);
      expect((await call(method, path, { body, token: other })).status).toBe(404);
    }
    expect((await call("GET", `/web/machines/${machineId}/metadata`, { token: other })).status).toBe(404);
    expect((await call("GET", `/web/machines/${machineId}/versions`, { token: other })).status).toBe(404);
    expect(await logged()).toEqual(before);
  });

  it("audits each change and replays a keyed one instead of acting twice", async () => {
    const path = `/web/machines/${machineId}/metadata/tier`;
    const first = await call("POST", path, { body: { value: "gold" }, key: "tier-1" });
    expect(first.status).toBe(204);
    const before = await logged();
    const again = await call("POST", path, { body: { value: "gold" }, key: "tier-1" });
    expect(again.status).toBe(204);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await logged()).toEqual(before);
    const mine = audited
      .filter((e) => e.target === machineId)
      .map((e) => `${e.method} ${e.action} ${e.status}`);
    expect(mine).toContain("POST machine.metadata_set 204");
    expect(mine).toContain("DELETE machine.metadata_delete 204");
    // The replay is not recorded again.
    expect(mine.filter((a) => a === "POST machine.metadata_set 204")).toHaveLength(3);
  });
});

describe("machine versions", () => {
  it("lists one MachineVersion per config, newest first; metadata changes the current one in place", async () => {
    const [only] = (await call("GET", `/web/machines/${machineId}/versions`)).json as {
      version: string;
      user_config: { metadata: Record<string, string> };
    }[];
    expect(only?.version).toBe(firstVersion);
    expect(only?.user_config.metadata).toMatchObject({ role: "primary", tier: "gold" });

    const updated = await call("POST", `/web/machines/${machineId}`, {
      body: { config: { image: "nginx:2", metadata: { fly_process_group: "app" } } },
    });
    expect(updated.status).toBe(200);
    const secondVersion = (updated.json as { instance_id: string }).instance_id;
    expect(secondVersion).not.toBe(firstVersion);
    const versions = (await call("GET", `/web/machines/${machineId}/versions`)).json as {
      version: string;
      user_config: { image: string; metadata: Record<string, string> };
    }[];
    expect(versions.map((v) => v.version)).toEqual([secondVersion, firstVersion]);
    expect(versions.map((v) => Object.keys(v).sort())).toEqual([
      ["user_config", "version"],
      ["user_config", "version"],
    ]);
    expect(versions[0]?.user_config).toMatchObject({
      image: "nginx:2",
      metadata: { fly_process_group: "app" },
    });
    expect(versions[1]?.user_config).toMatchObject({
      image: "nginx",
      metadata: { role: "primary", tier: "gold" },
    });
  });
});
