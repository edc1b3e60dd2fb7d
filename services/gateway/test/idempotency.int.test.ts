// Idempotency keys across two gateways: two APIs (each its own NATS connection, event store,
// catalog and KvIdempotency, on real HTTP ports) share one nats-server, as two gateway replicas do.
// Placement is a responder on the same server that counts what it is asked (the e2e runs the real
// service); what the test counts is the MACHINES log, through the catalog.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { mintToken } from "@hangar/auth";
import { appsStream, machinesStream, newMachineId } from "@hangar/domain";
import { EventStore, ensureStream } from "@hangar/eventstore";
import { MachinesView, type PlaceRequest, type PlaceResult, serveCommands, subjects } from "@hangar/service";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordKeyOf, requestFingerprint } from "../src/idempotency/keys.js";
import { KvIdempotency } from "../src/idempotency/kv-idempotency.js";
import { type GatewayReplica, startGatewayReplica } from "./gateway-replica.js";

const ORG_OF: Record<string, string> = { web: "acme", shop: "other" };
const key = new Uint8Array(randomBytes(32));
const acme = mintToken(key, { id: "tok_acme", kind: "org", org: "acme" });
const other = mintToken(key, { id: "tok_other", kind: "org", org: "other" });
// Short beats so that a dead gateway's key is taken over within seconds.
const timings = { heartbeatMs: 200, staleMs: 1000, waitMs: 8000, pollMs: 50 };

type Gateway = GatewayReplica;

let server: NatsServer;
let placer: NatsConnection;
let placeDelayMs = 0;
const placed: string[] = [];
const gateways: Gateway[] = [];

function startGateway(): Promise<Gateway> {
  return startGatewayReplica({
    natsUrl: server.url,
    key,
    directory: () => ({
      orgOf: (app) => ORG_OF[app],
      exists: (o) => o === "acme" || o === "other",
      limitsOf: () => ({}),
    }),
    extra: async ({ nc }) => ({ idempotency: await KvIdempotency.open(nc, { timings }) }),
  });
}

beforeAll(async () => {
  server = await startNatsServer();
  placer = await connect({ servers: server.url });
  const store = await EventStore.connect(placer);
  for (const s of [appsStream, machinesStream]) await ensureStream(store.jsm, s);
  serveCommands<PlaceRequest, PlaceResult>(placer, subjects.place, "placement", async (req) => {
    placed.push(req.machine_id);
    await sleep(placeDelayMs);
    return { host_id: "h0", region: req.region };
  });
  gateways.push(await startGateway(), await startGateway());
  const [a] = gateways;
  await a?.commands.createApp("web", "acme");
  await a?.commands.createApp("shop", "other");
}, 60_000);

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await placer?.close();
  await server?.stop();
});

const gw = (i: number) => gateways[i] as Gateway;

function post(i: number, path: string, body: unknown, opts: { token?: string; key?: string } = {}) {
  return fetch(`${gw(i).url}${path}`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${opts.token ?? acme}`,
      "content-type": "application/json",
      ...(opts.key ? { "idempotency-key": opts.key } : {}),
    },
    body: JSON.stringify(body),
  });
}

/** The app's machines that are not destroyed, as the MACHINES log holds them now (read from its start). */
async function loggedMachines(app: string): Promise<number> {
  const view = await MachinesView.start(await EventStore.connect(placer));
  try {
    return view.ofApp(app).filter((m) => m.state.status !== "destroyed").length;
  } finally {
    await view.stop();
  }
}

describe("Idempotency-Key on two gateways", () => {
  it("the same key and request on the other gateway replays the first answer: one machine", async () => {
    const before = await loggedMachines("web");
    const body = { config: { image: "nginx" }, region: "local" };
    const first = await post(0, "/v1/apps/web/machines", body, { key: "create-1" });
    expect(first.status).toBe(200);
    const made = (await first.json()) as { id: string };
    const again = await post(1, "/v1/apps/web/machines", body, { key: "create-1" });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await again.json()).toEqual(made);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    expect(await loggedMachines("web")).toBe(before + 1);
    // Without a key, the same request acts again.
    const unkeyed = await post(1, "/v1/apps/web/machines", body);
    expect(unkeyed.status).toBe(200);
    expect(((await unkeyed.json()) as { id: string }).id).not.toBe(made.id);
  });

  it("the same key with another request is a 422, and acts on nothing", async () => {
    await post(0, "/v1/apps/web/machines", { config: { image: "nginx" } }, { key: "create-2" });
    const before = placed.length;
    const res = await post(1, "/v1/apps/web/machines", { config: { image: "redis" } }, { key: "create-2" });
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual({
      status: "idempotency_key_reused",
      error: expect.stringContaining("used with a different request"),
    });
    expect(placed.length).toBe(before);
  });

  it("two requests with one key at once, one on each gateway: one acts, both get its answer", async () => {
    placeDelayMs = 700;
    try {
      const before = await loggedMachines("web");
      const placedBefore = placed.length;
      const body = { config: { image: "nginx" } };
      const [a, b] = await Promise.all([
        post(0, "/v1/apps/web/machines", body, { key: "create-3" }),
        post(1, "/v1/apps/web/machines", body, { key: "create-3" }),
      ]);
      expect([a.status, b.status]).toEqual([200, 200]);
      expect(await a.json()).toEqual(await b.json());
      expect([a, b].filter((r) => r.headers.get("idempotent-replayed") === "true")).toHaveLength(1);
      expect(placed.length - placedBefore).toBe(1);
      expect(await loggedMachines("web")).toBe(before + 1);
    } finally {
      placeDelayMs = 0;
    }
  });

  it("keys are the caller's: another org's token with the same key does not get the answer", async () => {
    const body = { config: { image: "nginx" } };
    const mine = await post(0, "/v1/apps/web/machines", body, { key: "shared-key" });
    expect(mine.status).toBe(200);
    // The other tenant's same key names a record of its own: it acts for them on their app.
    const own = await post(1, "/v1/apps/shop/machines", body, { key: "shared-key", token: other });
    expect(own.status).toBe(200);
    expect(own.headers.get("idempotent-replayed")).toBeNull();
    expect(((await own.json()) as { id: string }).id).not.toBe(((await mine.json()) as { id: string }).id);
    // Sending the first tenant's exact request with the first tenant's key replays nothing to them:
    // the app is not theirs, so not found.
    const theirs = await post(1, "/v1/apps/web/machines", body, { key: "shared-key-2", token: other });
    await post(0, "/v1/apps/web/machines", body, { key: "shared-key-2" });
    const again = await post(1, "/v1/apps/web/machines", body, { key: "shared-key-2", token: other });
    for (const r of [theirs, again]) {
      expect(r.status).toBe(404);
      expect(r.headers.get("idempotent-replayed") === "true").toBe(r === again);
    }
  });

  it("an answer that is not final (a 409) is not replayed: the retry acts again, on the same request only", async () => {
    const first = await post(0, "/v1/apps", { app_name: "web", org_slug: "acme" }, { key: "app-1" });
    expect(first.status).toBe(409);
    const again = await post(1, "/v1/apps", { app_name: "web", org_slug: "acme" }, { key: "app-1" });
    expect(again.status).toBe(409);
    expect(again.headers.get("idempotent-replayed")).toBeNull();
    // Its outcome was not kept, but the key stays bound to its request.
    const other = await post(1, "/v1/apps", { app_name: "blog", org_slug: "acme" }, { key: "app-1" });
    expect(other.status).toBe(422);
  });

  it("a malformed key is a 400 that says what a key is", async () => {
    const res = await post(0, "/v1/apps/web/machines", { config: { image: "nginx" } }, { key: "a b" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      status: "invalid_argument",
      error: expect.stringContaining("Idempotency-Key"),
    });
  });

  it("an attempt released without a kept answer (a 5xx) is resumed by the retry with the same ids", async () => {
    const store = await KvIdempotency.open(gw(0).nc, { timings });
    const first = await store.claim("released-key", "fp");
    if (first.kind !== "acting") throw new Error(`expected to act, got ${first.kind}`);
    await first.finish(undefined);
    const retry = await store.claim("released-key", "fp");
    if (retry.kind !== "acting") throw new Error(`expected to act, got ${retry.kind}`);
    expect(retry.operationId).toBe(first.operationId);
    expect(retry.resumed).toBe(true);
    expect(first.resumed).toBe(false);
    await retry.finish({ status: 200, body: "{}", contentType: "application/json" });
    expect(await store.claim("released-key", "other fp")).toEqual({ kind: "mismatch" });
    expect(await store.claim("released-key", "fp")).toMatchObject({
      kind: "replay",
      answer: { status: 200 },
    });
  });

  it("a gateway that died after making the machine, before answering: the retry elsewhere meets that machine", async () => {
    const body = { config: { image: "nginx" } };
    const path = "/v1/apps/web/machines";
    // The dying gateway: it claims the key, makes the machine the key names, and stops (its NATS
    // connection closes, so its beats stop) without recording an answer.
    const dying = await connect({ servers: server.url });
    const store = await KvIdempotency.open(dying, { timings });
    const recordKey = recordKeyOf(
      { org: "acme", tokenId: "tok_acme", credential: `Bearer ${acme}` },
      "create-dead",
    );
    const claim = await store.claim(recordKey, requestFingerprint("POST", path, JSON.stringify(body)));
    if (claim.kind !== "acting") throw new Error(`expected to act, got ${claim.kind}`);
    const made = await gw(0).commands.createMachine("web", {
      machineId: newMachineId(claim.operationId),
      config: body.config,
    });
    await dying.close();
    const before = await loggedMachines("web");
    const retry = await post(1, path, body, { key: "create-dead" });
    expect(retry.status).toBe(200);
    expect(((await retry.json()) as { id: string }).id).toBe(made.state.machineId);
    expect(await loggedMachines("web")).toBe(before);
    // From now on the answer is recorded: replayed on the first gateway too.
    const replay = await post(0, path, body, { key: "create-dead" });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
  });
});
