// The webhook routes over a real nats-server: the service's side is a small responder on
// cmd.webhooks.* (the webhooks service itself is tested in services/webhooks), so these tests pin the
// gateway's part: validation (400s), authorization by org, app and token kind (403 and 404), and the
// Fly-style error bodies. Every refusal also checks the service was never asked to change anything.
import { randomBytes } from "node:crypto";
import { mintToken } from "@hangar/auth";
import {
  CommandError,
  serveCommands,
  type WebhookCreateRequest,
  type WebhookDeliveryView,
  type WebhookView,
} from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createApi } from "../src/http/api.js";
import type { TokenAuth } from "../src/http/auth.js";
import { NatsWebhooksBackend } from "../src/webhooks/backend.js";

const KEY = new Uint8Array(randomBytes(32));
const ORG_OF: Record<string, string> = { web: "acme", api: "acme", shop: "rival" };
const AUTH: TokenAuth = {
  key: KEY,
  directory: {
    orgOf: (app) => ORG_OF[app],
    exists: (org) => org === "acme" || org === "rival",
    limitsOf: () => ({}),
  },
  isRevoked: () => false,
};
const ACME = mintToken(KEY, { id: "tok_acme", kind: "org", org: "acme" });
const ACME_READ = mintToken(KEY, { id: "tok_read", kind: "readonly", org: "acme" });
const WEB_DEPLOY = mintToken(KEY, { id: "tok_web", kind: "deploy", org: "acme", apps: ["web"] });
const OPERATOR = mintToken(KEY, { id: "tok_op", kind: "operator" });

let nats: NatsServer;
let nc: NatsConnection;
let api: ReturnType<typeof createApi>;
const asked: Array<[string, Record<string, unknown>]> = [];
const hooks = new Map<string, WebhookView>();

function hook(id: string, org: string, app: string | null): WebhookView {
  return {
    id,
    org,
    app,
    url: "https://example.com/hook",
    events: ["machine.started"],
    created_at: "2026-12-05T11:00:00.000Z",
    pending: 0,
    delivered: 1,
    given_up: 0,
  };
}

const DELIVERY: WebhookDeliveryView = {
  event_id: "42",
  event_type: "machine.started",
  status: "pending",
  queued_at: "2026-12-05T11:00:00.000Z",
  attempts: [],
  next_attempt_at: "2026-12-05T11:00:00.000Z",
};

/** The service's side of the contract, over `hooks`. */
async function answer(payload: Record<string, unknown>, subject: string): Promise<unknown> {
  const verb = subject.split(".").pop() ?? "";
  asked.push([verb, payload]);
  const found = () => {
    const h = hooks.get(String(payload.id));
    if (!h || h.org !== payload.org)
      throw new CommandError(`webhook ${String(payload.id)} not found`, "not_found");
    return h;
  };
  switch (verb) {
    case "create": {
      const req = payload as unknown as WebhookCreateRequest;
      if (req.url.startsWith("ftp:"))
        throw new CommandError("url must be http:// or https://", "invalid_argument");
      return { ...hook("wh_new", req.org, req.app ?? null), url: req.url, secret: "whsec_once" };
    }
    case "list":
      return { webhooks: [...hooks.values()].filter((h) => h.org === payload.org) };
    case "get":
      return found();
    case "delete":
      found();
      return {};
    case "deliveries":
      found();
      return { deliveries: [DELIVERY] };
    case "redeliver":
      found();
      return { ...DELIVERY, event_id: payload.event_id };
  }
  throw new CommandError(`unknown verb ${verb}`, "invalid_argument");
}

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  serveCommands<Record<string, unknown>, unknown>(nc, "cmd.webhooks.*", "webhooks", answer);
  await nc.flush();
  api = createApi({
    backend: {} as never,
    auth: AUTH,
    webhooks: new NatsWebhooksBackend(nc),
    logger: createLogger("test", { level: "silent" }),
  });
});

afterAll(async () => {
  await nc?.drain();
  await nats?.stop();
});

beforeEach(() => {
  asked.length = 0;
  hooks.clear();
  hooks.set("wh_org", hook("wh_org", "acme", null));
  hooks.set("wh_web", hook("wh_web", "acme", "web"));
  hooks.set("wh_api", hook("wh_api", "acme", "api"));
  hooks.set("wh_rival", hook("wh_rival", "rival", null));
});

async function call(method: string, path: string, body?: unknown, token = ACME) {
  const res = await api.request(`/v1${path}`, {
    method,
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const changesAsked = () => asked.filter(([verb]) => ["create", "delete", "redeliver"].includes(verb));

describe("webhook routes", () => {
  it("creates a webhook in the token's org and answers its secret once", async () => {
    const res = await call("POST", "/webhooks", {
      url: "https://example.com/x",
      events: ["machine.started"],
    });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ id: "wh_new", org: "acme", app: null, secret: "whsec_once" });
    expect(asked).toEqual([
      ["create", { org: "acme", url: "https://example.com/x", events: ["machine.started"] }],
    ]);
    const forApp = await call("POST", "/webhooks", {
      url: "https://e.com/",
      events: ["release.created"],
      app: "web",
    });
    expect(forApp.json).toMatchObject({ app: "web" });
    expect(asked[1]?.[1]).toMatchObject({ org: "acme", app: "web" });
  });

  it.each([
    ["no body", undefined, /body/],
    ["malformed JSON", "{url:", /invalid JSON/],
    ["no url", { events: ["machine.started"] }, /url/],
    ["no events", { url: "https://e.com/" }, /events/],
    ["an empty event list", { url: "https://e.com/", events: [] }, /at least one/],
    ["a bad event type", { url: "https://e.com/", events: ["Machine Started"] }, /event types/],
    ["a bad app name", { url: "https://e.com/", events: ["machine.started"], app: "Not_An_App" }, /app/],
  ])("refuses %s with a 400 and asks nothing", async (_what, body, message) => {
    const res = await call("POST", "/webhooks", body);
    expect(res.status).toBe(400);
    expect(res.json.status).toBe("invalid_argument");
    expect(String(res.json.error)).toMatch(message);
    expect(asked).toEqual([]);
  });

  it("answers the service's refusal as a Fly-style 400", async () => {
    const res = await call("POST", "/webhooks", { url: "ftp://e.com/", events: ["machine.started"] });
    expect(res).toEqual({
      status: 400,
      json: { error: "url must be http:// or https://", status: "invalid_argument" },
    });
  });

  it("lets a read-only token list and read, never create, delete or redeliver", async () => {
    const list = await call("GET", "/webhooks", undefined, ACME_READ);
    expect(list.status).toBe(200);
    expect((list.json.webhooks as WebhookView[]).map((h) => h.id).sort()).toEqual([
      "wh_api",
      "wh_org",
      "wh_web",
    ]);
    expect((await call("GET", "/webhooks/wh_web/deliveries", undefined, ACME_READ)).status).toBe(200);
    for (const [method, path, body] of [
      ["POST", "/webhooks", { url: "https://e.com/", events: ["machine.started"] }],
      ["POST", "/webhooks", { url: "https://e.com/", events: ["machine.started"], app: "web" }],
      ["DELETE", "/webhooks/wh_org", undefined],
      ["DELETE", "/webhooks/wh_web", undefined],
      ["POST", "/webhooks/wh_web/deliveries/42/redeliver", undefined],
    ] as const) {
      const res = await call(method, path, body, ACME_READ);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.json.status).toBe("permission_denied");
    }
    expect(changesAsked()).toEqual([]);
  });

  it("answers another org's webhook, or another org's app, as not found", async () => {
    for (const [method, path] of [
      ["GET", "/webhooks/wh_rival"],
      ["GET", "/webhooks/wh_rival/deliveries"],
      ["DELETE", "/webhooks/wh_rival"],
      ["POST", "/webhooks/wh_rival/deliveries/42/redeliver"],
    ] as const)
      expect((await call(method, path)).status, `${method} ${path}`).toBe(404);
    const app = await call("POST", "/webhooks", {
      url: "https://e.com/",
      events: ["machine.started"],
      app: "shop",
    });
    expect(app.status).toBe(404);
    expect(changesAsked()).toEqual([]);
  });

  it("shows an app-scoped token its apps' webhooks only, and lets it make webhooks for them alone", async () => {
    const list = await call("GET", "/webhooks", undefined, WEB_DEPLOY);
    expect((list.json.webhooks as WebhookView[]).map((h) => h.id)).toEqual(["wh_web"]);
    expect((await call("GET", "/webhooks/wh_org", undefined, WEB_DEPLOY)).status).toBe(404);
    expect((await call("GET", "/webhooks/wh_api", undefined, WEB_DEPLOY)).status).toBe(404);
    const orgWide = await call(
      "POST",
      "/webhooks",
      { url: "https://e.com/", events: ["machine.started"] },
      WEB_DEPLOY,
    );
    expect(orgWide.status).toBe(403);
    const other = await call(
      "POST",
      "/webhooks",
      { url: "https://e.com/", events: ["machine.started"], app: "api" },
      WEB_DEPLOY,
    );
    expect(other.status).toBe(403);
    expect(changesAsked()).toEqual([]);
    const own = await call(
      "POST",
      "/webhooks",
      { url: "https://e.com/", events: ["machine.started"], app: "web" },
      WEB_DEPLOY,
    );
    expect(own.status).toBe(201);
  });

  it("deletes and redelivers for a writer, refusing a malformed event id", async () => {
    expect(await call("DELETE", "/webhooks/wh_web")).toEqual({
      status: 200,
      json: { id: "wh_web", deleted: true },
    });
    const again = await call("POST", "/webhooks/wh_org/deliveries/42.1/redeliver");
    expect(again.status).toBe(202);
    expect(again.json).toMatchObject({ event_id: "42.1" });
    const bad = await call("POST", "/webhooks/wh_org/deliveries/abc/redeliver");
    expect(bad.status).toBe(400);
    expect(asked.map(([verb]) => verb)).toEqual(["get", "delete", "get", "redeliver", "get"]);
  });

  it("acts in ?org= or the token's org, personal for an operator token, and 404s an org not covered", async () => {
    const res = await call("GET", "/webhooks", undefined, OPERATOR);
    expect(res.status).toBe(404);
    expect(String(res.json.error)).toMatch(/org personal not found/);
    const named = await call("GET", "/webhooks?org=rival", undefined, OPERATOR);
    expect((named.json.webhooks as WebhookView[]).map((h) => h.id)).toEqual(["wh_rival"]);
    expect((await call("GET", "/webhooks?org=nosuch", undefined, OPERATOR)).status).toBe(404);
    expect((await call("GET", "/webhooks?org=rival")).status).toBe(404);
    expect((await call("GET", "/webhooks/wh_rival?org=rival")).status).toBe(404);
  });
});
