// The event feed's SSE routes on a real nats-server: authorization and filters through the API, and
// acceptance 1 of issue 17: a subscriber reads the stream over HTTP while 50 machines go through their
// lifecycle, is cut off three times at random points, resumes with Last-Event-ID, and sees every
// transition exactly once, in order per machine, held against what MACHINES itself holds.
import { randomBytes, randomInt } from "node:crypto";
import { mintToken, type TokenKind } from "@hangar/auth";
import {
  appsStream,
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineDecider,
  machinesStream,
  pgclustersStream,
  releasesStream,
  scalingStream,
  volumesStream,
} from "@hangar/domain";
import {
  EventFeed,
  EventsRelay,
  ensureEventsStream,
  eventsStreamName,
  type PublicEvent,
} from "@hangar/event-feed";
import {
  type AggregateStream,
  CommandHandler,
  decodeBatch,
  EventStore,
  ensureStream,
  prefixedStream,
} from "@hangar/eventstore";
import { createLogger } from "@hangar/telemetry";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createApi } from "../src/http/api.js";
import type { TokenAuth } from "../src/http/auth.js";
import type { MachinesBackend } from "../src/http/backend.js";
import { type ApiServer, startApiServer } from "../src/http/server.js";

const prefix = `sse${process.pid}`;
const APP_ORGS = new Map([
  ["web", "acme"],
  ["api", "acme"],
  ["rival", "globex"],
]);
const key = new Uint8Array(randomBytes(32));
const auth: TokenAuth = {
  key,
  directory: {
    orgOf: (app) => APP_ORGS.get(app),
    exists: (org) => org === "acme" || org === "globex",
    limitsOf: () => ({}),
  },
  isRevoked: () => false,
};
let n = 0;
const token = (
  kind: TokenKind,
  more: { org?: string; apps?: string[]; readOnly?: boolean; execOnly?: boolean } = {},
) => mintToken(key, { id: `tok_${++n}`, kind, ...more });
const ACME = token("org", { org: "acme" });

const machines = prefixedStream(machinesStream, prefix);
let nc: NatsConnection;
let store: EventStore;
let relay: EventsRelay | undefined;
let feed: EventFeed;
let server: ApiServer;
let handler: CommandHandler<MachineState, MachineCommand, MachineEvent>;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  for (const s of [
    appsStream,
    machinesStream,
    releasesStream,
    scalingStream,
    volumesStream,
    pgclustersStream,
  ])
    await ensureStream(store.jsm, prefixedStream(s as AggregateStream<{ type: string }>, prefix));
  await ensureEventsStream(store.jsm, { prefix });
  relay = await EventsRelay.start(nc, store.jsm, { prefix });
  feed = await EventFeed.start({ nc, prefix, resolver: { orgOfApp: (a) => APP_ORGS.get(a) } });
  handler = new CommandHandler(store, machines, machineDecider);
  const api = createApi({
    // Only the event routes are called; the machines backend is never reached.
    backend: {} as MachinesBackend,
    auth,
    logger: createLogger("test", { level: "silent" }),
    metrics: new Registry(),
    events: { feed, heartbeatMs: 1_000 },
  });
  server = await startApiServer(api, { port: 0 });
});

afterAll(async () => {
  await server?.close();
  await feed?.stop();
  await relay?.stop();
  for (const s of [
    appsStream,
    machinesStream,
    releasesStream,
    scalingStream,
    volumesStream,
    pgclustersStream,
  ])
    await store.jsm.streams
      .delete(prefixedStream(s as AggregateStream<{ type: string }>, prefix).name)
      .catch(() => {});
  await store.jsm.streams.delete(eventsStreamName(prefix)).catch(() => {});
  store.close();
  await nc.close();
});

let machineSeq = 0;
const command = (app: string, id: string, c: MachineCommand) =>
  handler.handle(`${app}.${id}`, c, { commandId: crypto.randomUUID() });

/** A machine's whole lifecycle, as the gateway and its host agent record it. */
async function lifecycle(app: string): Promise<void> {
  const id = `m${++machineSeq}x${process.pid}`;
  const nowMs = Date.now();
  await command(app, id, {
    type: "CreateMachine",
    machineId: id,
    app,
    name: id,
    region: "ams",
    instanceId: `i${id}`,
    configJson: JSON.stringify({ image: "nginx:1" }),
    skipLaunch: false,
    hostId: "h1",
  });
  const started = {
    type: "RecordStarted",
    hostId: "h1",
    pid: 100 + machineSeq,
    privateIp: "10.0.0.1",
    privateIpv6: "",
    port: 8080,
    startTime: 1,
    adopted: false,
  } as const;
  await command(app, id, started);
  await command(app, id, { type: "StopMachine", signal: "SIGINT", timeoutS: 5, nowMs });
  await command(app, id, {
    type: "RecordExited",
    exitCode: 0,
    signal: "",
    codeUnknown: false,
    restart: false,
  });
  await command(app, id, { type: "DestroyMachine", force: false, nowMs });
  await command(app, id, { type: "RecordDestroyed" });
}

/** An SSE client: reads frames until `stop` says so or `signal` aborts; returns what it got. */
async function readStream(
  path: string,
  opts: {
    tokenValue?: string;
    lastEventId?: string;
    stopAfter?: number;
    until?: (events: PublicEvent[]) => boolean;
  },
): Promise<PublicEvent[]> {
  const done = new AbortController();
  const headers: Record<string, string> = { authorization: `Bearer ${opts.tokenValue ?? ACME}` };
  if (opts.lastEventId) headers["last-event-id"] = opts.lastEventId;
  const res = await fetch(`${server.url}${path}`, { headers, signal: done.signal });
  expect(res.status, await (res.status === 200 ? Promise.resolve("") : res.clone().text())).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/event-stream");
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const events: PublicEvent[] = [];
  let buffer = "";
  try {
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf("\n\n");
        const id = /^id: (.*)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (data === undefined) continue;
        const event = JSON.parse(data) as PublicEvent;
        expect(event.id).toBe(id);
        events.push(event);
        if (opts.stopAfter !== undefined && events.length >= opts.stopAfter) return events;
        if (opts.until?.(events)) return events;
      }
    }
  } finally {
    // Cut the connection, as a dropped client would.
    done.abort();
  }
  return events;
}

const get = (path: string, tokenValue = ACME, headers: Record<string, string> = {}) =>
  fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${tokenValue}`, ...headers } });

describe("who may read the event stream", () => {
  it("refuses no token, another org's app or org, an app outside a token's apps, and an exec-only token", async () => {
    const cases: [string, string | undefined, number, string][] = [
      ["/v1/apps/web/events/stream", undefined, 401, "unauthenticated"],
      ["/v1/apps/rival/events/stream", ACME, 404, "not_found"],
      ["/v1/apps/nope/events/stream", ACME, 404, "not_found"],
      ["/v1/events/stream?org=globex", ACME, 404, "not_found"],
      ["/v1/events/stream?app=rival", ACME, 404, "not_found"],
      [
        "/v1/apps/api/events/stream",
        token("deploy", { org: "acme", apps: ["web"] }),
        403,
        "permission_denied",
      ],
      ["/v1/events/stream", token("machine-exec", { org: "acme", execOnly: true }), 403, "permission_denied"],
      [
        "/v1/apps/web/events/stream",
        token("machine-exec", { org: "acme", execOnly: true }),
        403,
        "permission_denied",
      ],
    ];
    for (const [path, t, status, code] of cases) {
      const res = await fetch(`${server.url}${path}`, { headers: t ? { authorization: `Bearer ${t}` } : {} });
      expect(res.status, path).toBe(status);
      expect(((await res.json()) as { status: string }).status, path).toBe(code);
    }
  });

  it("refuses bad filters and a bad Last-Event-ID with a 400 in Fly's shape", async () => {
    for (const path of [
      "/v1/apps/web/events/stream?types=machine.exploded",
      "/v1/events/stream?types=,",
      "/v1/events/stream?app=Not_An*App",
      "/v1/events/stream?last_event_id=abc",
    ]) {
      const res = await get(path);
      expect(res.status, path).toBe(400);
      const body = (await res.json()) as { status: string; error: unknown };
      expect(body.status, path).toBe("invalid_argument");
      expect(typeof body.error).toBe("string");
    }
    const header = await get("/v1/apps/web/events/stream", ACME, { "last-event-id": "12; DROP" });
    expect(header.status).toBe(400);
    expect(((await header.json()) as { error: string }).error).toMatch(/Last-Event-ID/);
  });

  it("serves each token what its scope covers: its org, its apps, read-only tokens too", async () => {
    const from = String(feed.lastSeq);
    await lifecycle("web");
    await lifecycle("rival");
    await lifecycle("api");
    const seven = (events: PublicEvent[]) => events.length >= 7;
    // The app route: that app only.
    const web = await readStream("/v1/apps/web/events/stream", { lastEventId: from, until: seven });
    expect(new Set(web.map((e) => e.app))).toEqual(new Set(["web"]));
    // Org-wide, read-only: both acme apps, never globex's; ?types narrows.
    const ro = token("readonly", { org: "acme", readOnly: true });
    const started = await readStream(`/v1/events/stream?types=machine.started&last_event_id=${from}`, {
      tokenValue: ro,
      stopAfter: 2,
    });
    expect(started.map((e) => [e.type, e.app, e.org])).toEqual([
      ["machine.started", "web", "acme"],
      ["machine.started", "api", "acme"],
    ]);
    // An app-scoped token on the org route sees its apps only.
    const scoped = await readStream("/v1/events/stream", {
      tokenValue: token("deploy", { org: "acme", apps: ["api"] }),
      lastEventId: from,
      until: seven,
    });
    expect(new Set(scoped.map((e) => e.app))).toEqual(new Set(["api"]));
    // The operator sees every org, or one with ?org=.
    const operator = token("operator");
    const globex = await readStream(`/v1/events/stream?org=globex&types=machine.*`, {
      tokenValue: operator,
      lastEventId: from,
      until: seven,
    });
    expect(new Set(globex.map((e) => e.app))).toEqual(new Set(["rival"]));
  });
});

describe("acceptance 1: 50 machines, three random disconnects, every transition exactly once", () => {
  it("resumes with Last-Event-ID without a loss or a double, in order per machine", async () => {
    const from = feed.lastSeq;
    const firstMachine = machineSeq + 1;
    // The machines run their lifecycles concurrently, 10 at a time, while the subscriber reads.
    const run = (async () => {
      for (let batch = 0; batch < 5; batch++)
        await Promise.all(Array.from({ length: 10 }, () => lifecycle("web")));
    })();
    const expectedCount = 50 * 7;
    const received: PublicEvent[] = [];
    let lastEventId: string | undefined = String(from);
    // Three cuts at random points of the run; each read resumes from the last id it saw.
    const cuts = [randomInt(1, 100), randomInt(100, 200), randomInt(200, 300)];
    for (const cut of cuts) {
      const got = await readStream("/v1/apps/web/events/stream", {
        lastEventId,
        stopAfter: cut - received.length,
      });
      received.push(...got);
      lastEventId = received.at(-1)?.id;
    }
    received.push(
      ...(await readStream("/v1/apps/web/events/stream", {
        lastEventId,
        stopAfter: expectedCount - received.length,
      })),
    );
    await run;
    // The truth: what MACHINES holds for these machines, in its order.
    const truth = new Map<string, string[]>();
    const info = await store.jsm.streams.info(machines.name);
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await store.jsm.streams.getMessage(machines.name, { seq });
      if (!m) continue;
      for (const r of decodeBatch(machines, m.data, seq)) {
        const [app, id] = r.aggregateId.split(".");
        if (app !== "web" || Number(/^m(\d+)x/.exec(id ?? "")?.[1]) < firstMachine) continue;
        truth.set(r.aggregateId, [...(truth.get(r.aggregateId) ?? []), r.event.type]);
      }
    }
    expect(truth.size).toBe(50);
    const ids = received.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(received.length).toBe(expectedCount);
    const seen = new Map<string, string[]>();
    for (const e of received) seen.set(e.subject, [...(seen.get(e.subject) ?? []), e.type]);
    const asPublic = (types: string[]) =>
      types.map(
        (t) =>
          `machine.${t.replace(/^Machine/, "").replace(/[A-Z]/g, (c, i) => (i ? "_" : "") + c.toLowerCase())}`,
      );
    for (const [machine, types] of truth) expect(seen.get(machine), machine).toEqual(asPublic(types));
    // Every cut connection ended its subscription: nothing is left following the feed.
    const deadline = Date.now() + 10_000;
    while (feed.subscribers > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(feed.subscribers).toBe(0);
    expect(asPublic(truth.values().next().value ?? [])).toEqual([
      "machine.created",
      "machine.start_requested",
      "machine.started",
      "machine.stop_requested",
      "machine.exited",
      "machine.destroy_requested",
      "machine.destroyed",
    ]);
  });
});

describe("history without following (hangar events)", () => {
  it("with follow=false sends what happened after the position and ends; tail=n starts n messages back", async () => {
    const before = String(feed.lastSeq);
    await lifecycle("api");
    const followed = await readStream("/v1/apps/api/events/stream", {
      lastEventId: before,
      until: (events) => events.some((e) => e.type === "machine.destroyed"),
    });
    // Ends by itself, with the same events a follower got.
    const history = await readStream(`/v1/apps/api/events/stream?follow=false&last_event_id=${before}`, {});
    expect(history.map((e) => e.id)).toEqual(followed.map((e) => e.id));
    expect(history.length).toBeGreaterThanOrEqual(6);
    // No position and no tail: nothing had happened after now.
    expect(await readStream("/v1/apps/api/events/stream?follow=false", {})).toEqual([]);
    // The last messages of the feed: the lifecycle's are among them.
    const tail = await readStream("/v1/events/stream?follow=false&tail=1000&types=machine.*", {});
    expect(tail.map((e) => e.id)).toEqual(expect.arrayContaining(history.map((e) => e.id)));
    const last = await readStream("/v1/events/stream?follow=false&tail=1", {});
    expect(last.map((e) => e.id)).toEqual([history.at(-1)?.id]);
  });

  it("refuses a bad follow or tail with a 400 in Fly's shape", async () => {
    for (const query of ["follow=maybe", "tail=0", "tail=1001", "tail=ten", "tail=-1"]) {
      const res = await get(`/v1/apps/web/events/stream?${query}`);
      expect(res.status, query).toBe(400);
      expect(await res.json()).toMatchObject({ status: "invalid_argument" });
    }
  });
});
