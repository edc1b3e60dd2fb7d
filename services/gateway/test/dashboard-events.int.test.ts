// The dashboard's live part on a real nats-server: an app page names the feed's position, and the
// dashboard's event route (cookie-authenticated) passes the app's events through from there, resumes
// from a Last-Event-ID, and never shows another org's app.
import { randomBytes } from "node:crypto";
import { mintToken } from "@hangar/auth";
import {
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineDecider,
  machinesStream,
} from "@hangar/domain";
import {
  EventFeed,
  EventsRelay,
  ensureEventsStream,
  eventsStreamName,
  FEED_STREAMS,
  type PublicEvent,
} from "@hangar/event-feed";
import { CommandHandler, EventStore, ensureStream, prefixedStream } from "@hangar/eventstore";
import { createLogger } from "@hangar/telemetry";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { createApi } from "../src/http/api.js";
import type { AppView, MachinesBackend } from "../src/http/backend.js";
import { ApiError } from "../src/http/errors.js";

const prefix = `dash${process.pid}`;
const ORG_OF: Record<string, string> = { web: "acme", rival: "globex" };
const key = new Uint8Array(randomBytes(32));
const ACME = mintToken(key, { id: "tok_acme", kind: "org", org: "acme" });

let nc: NatsConnection;
let store: EventStore;
let relay: EventsRelay | undefined;
let feed: EventFeed;
let api: ReturnType<typeof createApi>;
let handler: CommandHandler<MachineState, MachineCommand, MachineEvent>;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  for (const s of FEED_STREAMS) await ensureStream(store.jsm, prefixedStream(s, prefix));
  await ensureEventsStream(store.jsm, { prefix });
  relay = await EventsRelay.start(nc, store.jsm, { prefix });
  feed = await EventFeed.start({ nc, prefix, resolver: { orgOfApp: (a) => ORG_OF[a] } });
  handler = new CommandHandler(store, prefixedStream(machinesStream, prefix), machineDecider);
  // The app page's reads: the app, and no machines yet (they come through the stream).
  const backend = {
    async getApp(app: string): Promise<AppView> {
      const org = ORG_OF[app];
      if (org === undefined) throw ApiError.of("not_found", `app ${app} not found`);
      return { id: app, name: app, organization: { name: org, slug: org }, status: "deployed" };
    },
    listMachines: async () => [],
  } as unknown as MachinesBackend;
  api = createApi({
    backend,
    auth: {
      key,
      directory: {
        orgOf: (a) => ORG_OF[a],
        exists: (o) => o === "acme" || o === "globex",
        limitsOf: () => ({}),
      },
      isRevoked: () => false,
    },
    logger: createLogger("test", { level: "silent" }),
    events: { feed, heartbeatMs: 1_000 },
    dashboard: {},
  });
});

afterAll(async () => {
  await feed?.stop();
  await relay?.stop();
  for (const s of FEED_STREAMS)
    await store.jsm.streams.delete(prefixedStream(s, prefix).name).catch(() => {});
  await store?.jsm.streams.delete(eventsStreamName(prefix)).catch(() => {});
  store?.close();
  await nc?.close();
});

const createMachine = (app: string, id: string) =>
  handler.handle(
    `${app}.${id}`,
    {
      type: "CreateMachine",
      machineId: id,
      app,
      name: id,
      region: "ams",
      instanceId: `i${id}`,
      configJson: JSON.stringify({ image: "nginx:1" }),
      skipLaunch: true,
      hostId: "h1",
    },
    { commandId: crypto.randomUUID() },
  );

/** Reads the dashboard's event stream until `count` events came; the frames' ids and events. */
async function readEvents(cookie: string, query: string, headers: Record<string, string>, count: number) {
  const done = new AbortController();
  const res = await api.request(`/dashboard/apps/web/events${query}`, {
    headers: { cookie, accept: "text/event-stream", ...headers },
    signal: done.signal,
  });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/event-stream");
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const events: PublicEvent[] = [];
  let buffer = "";
  while (events.length < count) {
    const { value, done: ended } = await reader.read();
    if (ended) break;
    buffer += decoder.decode(value, { stream: true });
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const data = buffer
        .slice(0, end)
        .split("\n")
        .find((l) => l.startsWith("data: "));
      buffer = buffer.slice(end + 2);
      if (data) events.push(JSON.parse(data.slice(6)) as PublicEvent);
    }
  }
  await reader.cancel();
  done.abort();
  return events;
}

it("follows an app's events from the page's position, resumes by id, and never another org's", async () => {
  const login = await api.request("/dashboard/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: "http://localhost" },
    body: new URLSearchParams({ token: ACME }).toString(),
  });
  expect(login.status).toBe(303);
  const cookie = /hangar_session=[^;]+/.exec(login.headers.get("set-cookie") ?? "")?.[0] ?? "";

  const page = await (await api.request("/dashboard/apps/web", { headers: { cookie } })).text();
  const since = /data-since="(\d+)"/.exec(page)?.[1];
  expect(since).toBeDefined();

  // Made after the page was read and before its stream starts: the stream still brings them, in order.
  const id = `m${process.pid}`;
  await createMachine("rival", `r${process.pid}`);
  await createMachine("web", id);
  const seen = await readEvents(cookie, `?last_event_id=${since}`, {}, 1);
  expect(seen.map((e) => [e.type, e.app, e.subject])).toEqual([["machine.created", "web", `web.${id}`]]);

  // A reconnect (EventSource sends Last-Event-ID) goes on after that event, not from the start.
  const later = `n${process.pid}`;
  await createMachine("web", later);
  const resumed = await readEvents(
    cookie,
    `?last_event_id=${since}`,
    { "last-event-id": seen[0]?.id ?? "" },
    1,
  );
  expect(resumed.map((e) => e.subject)).toEqual([`web.${later}`]);

  const rival = await api.request("/dashboard/apps/rival/events", { headers: { cookie } });
  expect(rival.status).toBe(404);
  const none = await api.request("/dashboard/apps/web/events", { headers: { accept: "text/event-stream" } });
  expect(none.status).toBe(401);
});
