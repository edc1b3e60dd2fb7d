// Acceptance 2 of issue 17 on a real nats-server (secured: the service connects as its own NATS user)
// with the real webhooks service and real HTTP receivers: an event appended to APPS reaches EVENTS,
// the service's durable consumer queues it, and the receiver that fails its first 3 deliveries (500)
// gets it on the 4th. The receiver checks the signature with its own plain node:crypto code, and the
// same body under a changed timestamp fails that check. The delivery log shows 3 failed attempts,
// then the delivered one, each after a longer wait. Also: a receiver that never answers holds up
// nobody else, a pending retry survives a restart of the service, redelivery on demand, refusals.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { appDecider, appsStream, webhooksStream } from "@hangar/domain";
import { EventsRelay, ensureEventsStream, FEED_STREAMS } from "@hangar/event-feed";
import { CommandHandler, EventStore, ensureStream } from "@hangar/eventstore";
import { MasterKeys } from "@hangar/secrets";
import {
  CommandError,
  type NatsCredentials,
  natsAuthOptions,
  natsUsers,
  OPERATOR_USER,
  sendCommand,
  subjects,
  type WebhookCreatedReply,
  type WebhookDeliveryList,
  type WebhookDeliveryView,
  type WebhookList,
  writeNatsCredentials,
} from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { WebhooksService, type WebhooksServiceOptions } from "../src/webhooks-service.js";

const INITIAL_MS = 300;
const keys = new MasterKeys(randomBytes(32));

let server: NatsServer;
let creds: NatsCredentials;
let credsDir = "";
let nc: NatsConnection;
let store: EventStore;
const running: Array<{ service: WebhooksService; nc: NatsConnection }> = [];
const receivers: Server[] = [];

function connectAs(user: string): Promise<NatsConnection> {
  return connect({ servers: server.url, ...natsAuthOptions({ credsFile: creds.credsFile(user), user }) });
}

/** The webhooks service as its own NATS user, with a short retry schedule. */
async function startService(over: Partial<WebhooksServiceOptions> = {}) {
  const serviceNc = await connectAs("webhooks");
  const service = await WebhooksService.start({
    nc: serviceNc,
    store: await EventStore.connect(serviceNc),
    logger: createLogger("webhooks-test", { level: "silent" }),
    keys,
    policy: { initialMs: INITIAL_MS, maxMs: 10_000, giveUpAfterMs: 600_000 },
    timeoutMs: 30_000,
    concurrency: 2,
    allowPrivate: true,
    ...over,
  });
  const entry = { service, nc: serviceNc };
  running.push(entry);
  return entry;
}

async function stopService(entry: { service: WebhooksService; nc: NatsConnection }): Promise<void> {
  running.splice(running.indexOf(entry), 1);
  await entry.service.stop();
  await entry.nc.close();
}

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  atMs: number;
}

/** A receiver answering each request with the next status of `statuses` (the last one after that); "hang" never answers. */
async function receiver(statuses: Array<number | "hang">): Promise<{ url: string; got: Received[] }> {
  const got: Received[] = [];
  const srv = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const answer = statuses[Math.min(got.length, statuses.length - 1)];
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), atMs: Date.now() });
      if (answer === "hang") return;
      res.writeHead(answer ?? 500).end();
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  receivers.push(srv);
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hook`, got };
}

/**
 * The receiver's own check, as docs/webhooks.md shows it: HMAC-SHA256 keyed by the secret over
 * "<t>.<raw body>", hex, compared in constant time.
 */
function verify(secret: string, header: string, body: string): boolean {
  const parts = Object.fromEntries(header.split(",").map((kv) => kv.split("=", 2) as [string, string]));
  if (!parts.t || !parts.v1) return false;
  const expected = createHmac("sha256", secret).update(`${parts.t}.${body}`).digest();
  const given = Buffer.from(parts.v1, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const ask = <R>(verb: keyof typeof subjects.webhooks, body: unknown) =>
  sendCommand<unknown, R>(nc, subjects.webhooks[verb], body, 10_000);

const refusal = (p: Promise<unknown>): Promise<CommandError> =>
  p.then(
    () => new CommandError("not refused", "internal"),
    (e: unknown) => e as CommandError,
  );

async function createApp(name: string, org: string): Promise<void> {
  await new CommandHandler(store, appsStream, appDecider).handle(
    name,
    { type: "CreateApp", name, orgSlug: org },
    { commandId: `create-${name}` },
  );
}

const deliveries = async (id: string) =>
  (await ask<WebhookDeliveryList>("deliveries", { org: "acme", id })).deliveries;

/** The webhook's delivery of the one event it has, once `done` says it is far enough. */
function deliveryOnce(id: string, done: (d: WebhookDeliveryView) => boolean, what: string) {
  return vi.waitFor(
    async () => {
      const [d] = await deliveries(id);
      if (!d || !done(d)) throw new Error(`waiting for ${what}: ${JSON.stringify(d)}`);
      return d;
    },
    { timeout: 30_000, interval: 50 },
  );
}

let relay: EventsRelay | undefined;

beforeAll(async () => {
  credsDir = await mkdtemp(join(tmpdir(), "hangar-webhooks-creds-"));
  creds = await writeNatsCredentials(credsDir, natsUsers([]));
  server = await startNatsServer({ authorization: creds.authorization });
  nc = await connectAs(OPERATOR_USER);
  store = await EventStore.connect(nc);
  for (const stream of [...FEED_STREAMS, webhooksStream]) await ensureStream(store.jsm, stream);
  await ensureEventsStream(store.jsm);
  relay = await EventsRelay.start(nc, store.jsm);
  await createApp("web", "acme");
  await startService();
});

afterAll(async () => {
  for (const entry of [...running]) await stopService(entry);
  await relay?.stop();
  for (const srv of receivers) srv.closeAllConnections();
  await Promise.all(receivers.map((srv) => new Promise((resolve) => srv.close(resolve))));
  store?.close();
  await nc?.close();
  await server?.stop();
  if (credsDir) await rm(credsDir, { recursive: true, force: true });
});

describe("webhook deliveries", () => {
  it("delivers on the 4th try after 3 failures, signed, with the same id, each retry after a longer wait", async () => {
    const flaky = await receiver([500, 500, 500, 204]);
    const dead = await receiver(["hang"]);
    const hook = await ask<WebhookCreatedReply>("create", {
      org: "acme",
      url: flaky.url,
      events: ["app.created"],
    });
    expect(hook.secret).toMatch(/^whsec_/);
    // A webhook whose receiver never answers, on the same event: it must hold up nobody else.
    const stuck = await ask<WebhookCreatedReply>("create", { org: "acme", url: dead.url, events: [] });
    // Another org's event reaches neither.
    await createApp("elsewhere", "other");
    await createApp("api", "acme");

    const delivered = await deliveryOnce(
      hook.id,
      (d) => d.status === "delivered",
      "the 4th attempt delivered",
    );
    expect(delivered.attempts.map((a) => a.status_code)).toEqual([500, 500, 500, 204]);
    expect(delivered.event_type).toBe("app.created");
    // Each retry came after its backoff (300, 600, 1200 ms): the waits grow.
    const at = delivered.attempts.map((a) => Date.parse(a.at));
    const waits = at.slice(1).map((t, i) => t - (at[i] ?? 0));
    console.log(`[webhooks] waits before attempts 2-4: ${waits.join(", ")} ms (backoff 300, 600, 1200 ms)`);
    for (let i = 1; i < at.length; i++)
      expect((at[i] ?? 0) - (at[i - 1] ?? 0), `wait before attempt ${i + 1}`).toBeGreaterThanOrEqual(
        INITIAL_MS * 2 ** (i - 1),
      );

    expect(flaky.got).toHaveLength(4);
    const [first] = flaky.got;
    if (!first) throw new Error("no request");
    const event = JSON.parse(first.body);
    expect(event).toMatchObject({ schema: "hangar.event.v1", type: "app.created", app: "api", org: "acme" });
    expect(delivered.event_id).toBe(event.id);
    for (const r of flaky.got) {
      expect(r.headers["content-type"]).toBe("application/json");
      expect(r.headers["x-hangar-event-id"]).toBe(event.id);
      expect(r.body).toBe(first.body);
      const signature = String(r.headers["x-hangar-signature"]);
      expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(verify(hook.secret, signature, r.body)).toBe(true);
      // The same body and signature under another timestamp fail the check: a replay cannot re-date it.
      const t = Number(/t=(\d+)/.exec(signature)?.[1]);
      expect(verify(hook.secret, signature.replace(`t=${t}`, `t=${t + 1}`), r.body)).toBe(false);
      expect(verify(`${hook.secret}x`, signature, r.body)).toBe(false);
    }

    // Meanwhile the dead receiver still holds its first request, unanswered.
    expect(dead.got).toHaveLength(1);
    const [held] = await deliveries(stuck.id);
    expect(held).toMatchObject({ status: "pending", attempts: [] });

    // The log never shows the secret; the list shows the counts.
    const list = await ask<WebhookList>("list", { org: "acme" });
    expect(JSON.stringify(list)).not.toContain(hook.secret);
    expect(list.webhooks.find((w) => w.id === hook.id)).toMatchObject({ delivered: 1, pending: 0 });

    // Redelivery on demand: once more, the same event id and body.
    const again = await ask<WebhookDeliveryView>("redeliver", {
      org: "acme",
      id: hook.id,
      event_id: event.id,
    });
    expect(again.status).toBe("pending");
    await vi.waitFor(() => expect(flaky.got).toHaveLength(5), { timeout: 10_000, interval: 50 });
    expect(flaky.got[4]?.headers["x-hangar-event-id"]).toBe(event.id);
    expect(flaky.got[4]?.body).toBe(first.body);
    await deliveryOnce(hook.id, (d) => d.status === "delivered" && d.attempts.length === 5, "redelivered");
    await ask("delete", { org: "acme", id: stuck.id });
  });

  it("takes a pending retry up again after a restart, from the log", async () => {
    const flaky = await receiver([503, 200]);
    const hook = await ask<WebhookCreatedReply>("create", {
      org: "acme",
      app: "web2",
      url: flaky.url,
      events: [],
    });
    const [current] = running;
    if (!current) throw new Error("no service");
    await stopService(current);
    // The event comes while no service runs; its delivery fails once, then the service stops again.
    await createApp("web2", "acme");
    const second = await startService({
      policy: { initialMs: 2_000, maxMs: 10_000, giveUpAfterMs: 600_000 },
    });
    await deliveryOnce(hook.id, (d) => d.attempts.length === 1, "the first attempt");
    await stopService(second);
    await startService();
    const d = await deliveryOnce(hook.id, (x) => x.status === "delivered", "delivered after the restart");
    expect(d.attempts.map((a) => a.status_code)).toEqual([503, 200]);
    expect(new Set(flaky.got.map((r) => r.headers["x-hangar-event-id"])).size).toBe(1);
  });

  it("runs as two instances: only the delivery lease's holder sends, and the other takes over when it stops", async () => {
    const flaky = await receiver([503, 503, 200]);
    const hook = await ask<WebhookCreatedReply>("create", {
      org: "acme",
      app: "web4",
      url: flaky.url,
      events: [],
    });
    await startService();
    expect(running).toHaveLength(2);
    expect(running.filter((r) => r.service.sending())).toHaveLength(1);
    await createApp("web4", "acme");
    await deliveryOnce(hook.id, (d) => d.attempts.length >= 1, "the first attempt");
    const holder = running.find((r) => r.service.sending());
    if (!holder) throw new Error("no instance holds the delivery lease");
    await stopService(holder);
    const d = await deliveryOnce(hook.id, (x) => x.status === "delivered", "delivered by the other instance");
    expect(d.attempts.map((a) => a.status_code)).toEqual([503, 503, 200]);
    // Two instances, and still every attempt sent once.
    expect(flaky.got).toHaveLength(3);
    expect(running).toHaveLength(1);
    expect(running[0]?.service.sending()).toBe(true);
  });

  it("gives a delivery up once its next attempt would fall past the give-up time", async () => {
    const dead = await receiver([500]);
    const [current] = running;
    if (!current) throw new Error("no service");
    await stopService(current);
    // Attempts at 0 and after 200 ms; the next would come 400 ms later, past 500 ms: given up.
    const short = await startService({ policy: { initialMs: 200, maxMs: 10_000, giveUpAfterMs: 500 } });
    const hook = await ask<WebhookCreatedReply>("create", {
      org: "acme",
      app: "web3",
      url: dead.url,
      events: [],
    });
    await createApp("web3", "acme");
    const d = await deliveryOnce(hook.id, (x) => x.status === "given_up", "given up");
    expect(d.attempts.map((a) => a.status_code)).toEqual([500, 500]);
    expect(d.next_attempt_at).toBeNull();
    await stopService(short);
    await startService();
    // A restart does not take a given-up delivery up again; a redelivery does.
    expect(dead.got).toHaveLength(2);
    await ask("redeliver", { org: "acme", id: hook.id, event_id: d.event_id });
    await vi.waitFor(() => expect(dead.got).toHaveLength(3), { timeout: 10_000, interval: 50 });
    await ask("delete", { org: "acme", id: hook.id });
  });

  it("refuses bad requests, another org's webhook, and a redelivery of an unknown event", async () => {
    const { url } = await receiver([200]);
    for (const [body, message] of [
      [{ org: "acme", url: "ftp://example.com/x", events: [] }, /http/],
      [{ org: "acme", url: "not a url", events: [] }, /not a URL/],
      [{ org: "acme", url, events: ["machine.*"] }, /event types/],
      [{ org: "acme", url, events: ["machine.exploded"] }, /unknown event types machine\.exploded/],
      [{ org: "acme", url }, /event types/],
      [{ url, events: [] }, /org/],
    ] as const) {
      const err = await refusal(ask("create", body));
      expect(err.code).toBe("invalid_argument");
      expect(err.message).toMatch(message);
    }
    const hook = await ask<WebhookCreatedReply>("create", { org: "acme", url, events: [] });
    expect((await refusal(ask("get", { org: "other", id: hook.id }))).code).toBe("not_found");
    expect((await refusal(ask("deliveries", { org: "other", id: hook.id }))).code).toBe("not_found");
    expect((await refusal(ask("redeliver", { org: "acme", id: hook.id, event_id: "999" }))).code).toBe(
      "not_found",
    );
    await ask("delete", { org: "acme", id: hook.id });
    expect((await refusal(ask("get", { org: "acme", id: hook.id }))).code).toBe("not_found");
  });

  it("refuses private targets unless allowed, and answers only the gateway's NATS user", async () => {
    const strict = await startService({ allowPrivate: false });
    // Both instances answer in the queue group: ask until the strict one did.
    const refused = await vi.waitFor(
      async () => {
        const err = await refusal(ask("create", { org: "acme", url: "http://127.0.0.1:9/x", events: [] }));
        if (err.code !== "invalid_argument") throw new Error("the other instance answered");
        return err;
      },
      { timeout: 10_000, interval: 10 },
    );
    expect(refused.message).toMatch(/127\.0\.0\.1.*private/);
    await stopService(strict);
    for (const user of ["proxy", "scheduler", "subscriber"]) {
      const other = await connectAs(user);
      try {
        const err = await refusal(sendCommand(other, subjects.webhooks.list, { org: "acme" }, 2_000));
        expect(String(err), user).toMatch(/permission/i);
      } finally {
        await other.close();
      }
    }
    const gateway = await connectAs("gateway");
    try {
      const list = await sendCommand<unknown, WebhookList>(gateway, subjects.webhooks.list, {
        org: "nobody",
      });
      expect(list).toEqual({ webhooks: [] });
    } finally {
      await gateway.close();
    }
  });
});
