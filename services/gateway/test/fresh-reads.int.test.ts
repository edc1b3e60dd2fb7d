// Read-your-writes across two gateway replicas (http/fresh-reads.ts): an app or a machine made
// through one gateway is found at once through the other, whose own fold of APPS and MACHINES may
// not have read it yet. Two APIs, each with its own NATS connection, event store and catalog (whose
// apps view also answers which org an app is in), on real HTTP ports and one real nats-server;
// placement is a responder on the same server. The second gateway reaches NATS through a TCP relay
// that holds what the server sends it for LAG_MS, so its fold is reliably behind the first's.
import { randomBytes } from "node:crypto";
import { createConnection, createServer, type Server } from "node:net";
import { mintToken } from "@hangar/auth";
import { appsStream, machinesStream } from "@hangar/domain";
import { EventStore, ensureStream } from "@hangar/eventstore";
import { type PlaceRequest, type PlaceResult, serveCommands, subjects } from "@hangar/service";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GatewayReplica, startGatewayReplica } from "./gateway-replica.js";

const key = new Uint8Array(randomBytes(32));
const token = mintToken(key, { id: "tok_acme", kind: "org", org: "acme" });

type Gateway = GatewayReplica;

let server: NatsServer;
let placer: NatsConnection;
let relay: Server;
const gateways: Gateway[] = [];
const LAG_MS = 300;

/** A TCP relay to `port` that delivers what the server sends LAG_MS late (in order). */
async function laggingRelay(port: number): Promise<Server> {
  const relay = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port });
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => setTimeout(() => client.writable && client.write(chunk), LAG_MS));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  return relay;
}

function startGateway(natsUrl: string): Promise<Gateway> {
  return startGatewayReplica({
    natsUrl,
    key,
    // The catalog's apps view says which org an app is in: a replica behind answers 404 by it.
    directory: (catalog) => ({
      orgOf: (app) => catalog.app(app)?.orgSlug,
      exists: (o) => o === "acme",
      limitsOf: () => ({}),
    }),
    extra: async ({ store, catalog }) => ({ freshReads: catalog.freshReads(store) }),
  });
}

beforeAll(async () => {
  server = await startNatsServer();
  placer = await connect({ servers: server.url });
  const store = await EventStore.connect(placer);
  for (const s of [appsStream, machinesStream]) await ensureStream(store.jsm, s);
  serveCommands<PlaceRequest, PlaceResult>(placer, subjects.place, "placement", async (req) => ({
    host_id: "h0",
    region: req.region,
  }));
  relay = await laggingRelay(Number(new URL(server.url).port));
  const address = relay.address();
  if (address === null || typeof address === "string") throw new Error("the relay has no port");
  gateways.push(await startGateway(server.url), await startGateway(`nats://127.0.0.1:${address.port}`));
}, 60_000);

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await placer?.close();
  relay?.close();
  await server?.stop();
});

const gw = (i: number) => gateways[i] as Gateway;
const call = (i: number, path: string, init: RequestInit = {}) =>
  fetch(`${gw(i).url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
  });

describe("read-your-writes across two gateways", () => {
  it("an app created through one gateway is found at once through the other", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const name = `fresh-${i}`;
      await gw(0).commands.createApp(name, "acme");
      statuses.push((await call(1, `/v1/apps/${name}/machines`)).status);
    }
    expect(statuses).toEqual(Array(10).fill(200));
  });

  it("a machine created through one gateway is found at once through the other", async () => {
    await gw(0).commands.createApp("fresh-machines", "acme");
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const made = await call(0, "/v1/apps/fresh-machines/machines", {
        method: "POST",
        body: JSON.stringify({ config: { image: "nginx" }, region: "local", skip_launch: true }),
      });
      expect(made.status).toBe(200);
      const { id } = (await made.json()) as { id: string };
      statuses.push((await call(1, `/v1/apps/fresh-machines/machines/${id}`)).status);
    }
    expect(statuses).toEqual(Array(10).fill(200));
  });

  it("an app nobody created is still a 404, with Fly's error body", async () => {
    const res = await call(1, "/v1/apps/never-made/machines");
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ status: "not_found", error: "app never-made not found" });
  });
});
