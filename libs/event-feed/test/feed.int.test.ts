import {
  appsStream,
  type MachineEvent,
  machinesStream,
  type PgClusterEvent,
  pgclustersStream,
  releasesStream,
  scalingStream,
  volumesStream,
} from "@hangar/domain";
import {
  type AggregateStream,
  encodeBatch,
  ensureStream,
  eventTypesHeaders,
  plantedStored,
  prefixedStream,
} from "@hangar/eventstore";
import { hangar } from "@hangar/proto";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import {
  EventFeed,
  EventsRelay,
  ensureEventsStream,
  eventsStreamName,
  type FeedEndReason,
  type FeedEvent,
  type FeedPosition,
  type LeasedRelay,
  parseEventId,
  runRelayUnderLease,
  sseStream,
} from "../src/mod.js";

// Streams of this file only: the shared nats-server outlives it.
const prefix = `feed${process.pid}`;
const orgs = new Map([
  ["web", "acme"],
  ["api", "acme"],
  ["other", "globex"],
]);
const resolver = { orgOfApp: (app: string) => orgs.get(app) };
let nc: NatsConnection;
let jsm: JetStreamManager;
let js: JetStreamClient;
const feeds: EventFeed[] = [];
let machineCount = 0;

const streamOf = <E extends { type: string }>(s: AggregateStream<E>) => prefixedStream(s, prefix);

let relay: LeasedRelay | undefined;
const mainRelay = () => runRelayUnderLease(nc, jsm, { prefix, holder: `main-${process.pid}` });

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  jsm = await jetstreamManager(nc);
  js = jetstream(nc);
  // PGCLUSTERS is left out on purpose: EVENTS must source it once it exists.
  for (const s of [appsStream, machinesStream, releasesStream, scalingStream, volumesStream])
    await ensureStream(jsm, streamOf(s as AggregateStream<{ type: string }>));
  await ensureEventsStream(jsm, { prefix });
  relay = await mainRelay();
});

afterAll(async () => {
  await Promise.all(feeds.map((f) => f.stop()));
  await relay?.stop();
  const names = [eventsStreamName(prefix)];
  for (const s of [
    appsStream,
    machinesStream,
    releasesStream,
    scalingStream,
    volumesStream,
    pgclustersStream,
  ])
    names.push(streamOf(s as AggregateStream<{ type: string }>).name);
  for (const name of names) await jsm.streams.delete(name).catch(() => {});
  await nc.close();
});

async function startFeed(ringSize?: number): Promise<EventFeed> {
  const feed = await EventFeed.start({ nc, jsm, prefix, resolver, ...(ringSize ? { ringSize } : {}) });
  feeds.push(feed);
  return feed;
}

/** A machine's lifecycle as its decisions: create + start request (one message), started, stop, exited, destroy, destroyed. */
async function machineLifecycle(app: string): Promise<string> {
  const id = `m${++machineCount}${process.pid}`;
  const stream = streamOf(machinesStream);
  const aggregateId = `${app}.${id}`;
  const decisions: MachineEvent[][] = [
    [
      {
        type: "MachineCreated",
        data: hangar.v1.MachineCreated.create({
          machineId: id,
          app,
          configJson: JSON.stringify({ image: "nginx:1", env: { API_TOKEN: "not-for-subscribers" } }),
        }),
      },
      { type: "MachineStartRequested", data: hangar.v1.MachineStartRequested.create({ instanceId: "i1" }) },
    ],
    [
      {
        type: "MachineStarted",
        data: hangar.v1.MachineStarted.create({ hostId: "h1", pid: 42, startTime: 7 }),
      },
    ],
    [{ type: "MachineDestroyed", data: hangar.v1.MachineDestroyed.create({}) }],
  ];
  // As EventStore appends: each decision expects the aggregate's last sequence in MACHINES.
  let last = 0;
  for (const events of decisions) {
    const ack = await js.publish(
      `${stream.subjectPrefix}.${aggregateId}`,
      encodeBatch(stream, aggregateId, events, { commandId: crypto.randomUUID() }),
      { expect: { lastSubjectSequence: last }, headers: eventTypesHeaders(events) },
    );
    last = ack.seq;
  }
  return id;
}

/** Collects what a subscription delivers. */
function collector() {
  const events: FeedEvent[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  let ended: FeedEndReason | undefined;
  return {
    events,
    get ended() {
      return ended;
    },
    onEvent(e: FeedEvent) {
      events.push(e);
      for (const w of waiters.filter((w) => events.length >= w.n)) w.resolve();
    },
    onEnd(reason: FeedEndReason) {
      ended = reason;
    },
    waitFor(n: number, timeoutMs = 10_000): Promise<void> {
      if (events.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`got ${events.length} events of ${n}: ${events.map((e) => e.event.id)}`)),
          timeoutMs,
        );
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
  };
}

/** `truth` once it holds `n` events: the relay copies into EVENTS a moment after each append. */
async function truthOf(feed: EventFeed, after: number, n: number): Promise<FeedEvent[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const events = await truth(feed, after);
    if (events.length >= n || Date.now() > deadline) return events;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every event of EVENTS after `after`, as the feed converts them: the truth a subscription is held to. */
async function truth(feed: EventFeed, after = 0): Promise<FeedEvent[]> {
  const info = await jsm.streams.info(feed.streamName);
  const out: FeedEvent[] = [];
  for (let seq = after + 1; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(feed.streamName, { seq });
    if (m)
      out.push(...(await feed.convert({ seq, subject: m.subject, data: m.data, planted: plantedStored(m) })));
  }
  return out;
}

describe("the EVENTS stream", () => {
  it("holds what its sources get, quickly, with one sequence for all of them", async () => {
    const feed = await startFeed();
    const live = collector();
    feed.subscribe({ filter: {}, onEvent: live.onEvent });
    const t0 = performance.now();
    await machineLifecycle("web");
    await live.waitFor(4);
    console.log(
      `four events through MACHINES -> EVENTS -> feed in ${(performance.now() - t0).toFixed(1)} ms`,
    );
    const ids = live.events.map((e) => e.event.id);
    const seqs = live.events.map((e) => e.seq);
    // One decision of two events shares a sequence: its events are <seq>.0 and <seq>.1.
    expect(ids[0]).toBe(`${seqs[0]}.0`);
    expect(ids[1]).toBe(`${seqs[0]}.1`);
    expect(ids[2]).toBe(String((seqs[0] ?? 0) + 1));
    expect(live.events.map((e) => e.event.type)).toEqual([
      "machine.created",
      "machine.start_requested",
      "machine.started",
      "machine.destroyed",
    ]);
    const created = live.events[0]?.event;
    expect(created).toMatchObject({ app: "web", org: "acme", schema: "hangar.event.v1" });
    expect(created?.data).toMatchObject({ image: "nginx:1", app: "web" });
    expect(JSON.stringify(live.events.map((e) => e.event))).not.toContain("not-for-subscribers");
  });

  it("holds appends that expect their subject's last sequence, interleaved across streams, and a relay restart doubles none", async () => {
    // nats-server 2.9 checks an append's Nats-Expected-Last-Subject-Sequence again when it sources the
    // message into another stream, against that stream's sequence: a sourced EVENTS stalled at the
    // second event of a machine once another stream's messages came between.
    const feed = await startFeed();
    const live = collector();
    feed.subscribe({ filter: { app: "api" }, onEvent: live.onEvent });
    const apps = streamOf(appsStream);
    const appCreated = (commandId: string) =>
      js.publish(
        `${apps.subjectPrefix}.api`,
        encodeBatch(apps, "api", [{ type: "AppCreated", data: { name: "api", orgSlug: "acme" } as never }], {
          commandId,
        }),
        { headers: eventTypesHeaders([{ type: "AppCreated" }]) },
      );
    await appCreated(crypto.randomUUID());
    const id = await machineLifecycle("api");
    await live.waitFor(5);
    // A second relay, as a restarted gateway's: it reads where the copies got to and doubles nothing.
    const second = await EventsRelay.start(nc, jsm, { prefix });
    await machineLifecycle("api");
    await live.waitFor(9);
    await second.stop();
    const machineEvents = live.events.filter((e) => e.event.subject === `api.${id}`).map((e) => e.event.type);
    expect(machineEvents).toEqual([
      "machine.created",
      "machine.start_requested",
      "machine.started",
      "machine.destroyed",
    ]);
    const ids = live.events.map((e) => e.event.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(live.events).toHaveLength(9);
    expect(live.events.map((e) => e.event)).toEqual(
      (await truth(feed)).filter((e) => e.event.app === "api").map((e) => e.event),
    );
  });

  it("goes on past an answer the server stored in EVENTS, and a relay started after it doubles nothing", async () => {
    const feed = await startFeed();
    const live = collector();
    feed.subscribe({ filter: { app: "planted" }, onEvent: live.onEvent });
    await machineLifecycle("planted");
    await live.waitFor(4);
    // nats-server answers a JetStream API request on whatever reply subject it names, and EVENTS
    // stores the answer when that subject is one of its own: here, the newest on MACHINES' copies.
    const events = eventsStreamName(prefix);
    const before = (await jsm.streams.info(events)).state.last_seq;
    nc.publish(`$JS.API.STREAM.INFO.${events}`, "", {
      reply: `events.${streamOf(machinesStream).subjectPrefix}.planted.x`,
    });
    while ((await jsm.streams.info(events)).state.last_seq === before)
      await new Promise((r) => setTimeout(r, 10));
    // A relay started now (a restarted gateway's) finds MACHINES' last copy behind it.
    const second = await EventsRelay.start(nc, jsm, { prefix });
    await machineLifecycle("planted");
    await live.waitFor(8);
    await second.stop();
    const created = (await truth(feed)).filter(
      (e) => e.event.app === "planted" && e.event.type === "machine.created",
    );
    expect(created).toHaveLength(2);
    const ids = live.events.map((e) => e.event.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(live.events).toHaveLength(8);
  });

  it("passes over a copy the server made of a real event (a direct get's answer) on EVENTS' subjects", async () => {
    const feed = await startFeed();
    const live = collector();
    feed.subscribe({ filter: { app: "copied" }, onEvent: live.onEvent });
    const machines = streamOf(machinesStream);
    const id = await machineLifecycle("copied");
    await live.waitFor(4);
    // The machine's first decision in MACHINES (MachineCreated), copied by the server onto an empty
    // subject of MACHINES' copies in EVENTS, headers and all: it decodes as that machine's events.
    const first = await jsm.direct.getMessage(machines.name, {
      seq: 1,
      next_by_subj: `${machines.subjectPrefix}.copied.${id}`,
    });
    const events = eventsStreamName(prefix);
    const before = (await jsm.streams.info(events)).state.last_seq;
    nc.publish(`$JS.API.DIRECT.GET.${machines.name}`, JSON.stringify({ seq: first?.seq }), {
      reply: `events.${machines.subjectPrefix}.copied.${id}x`,
    });
    while ((await jsm.streams.info(events)).state.last_seq === before)
      await new Promise((r) => setTimeout(r, 10));
    // And onto an empty subject of MACHINES itself: the relay copies no such message into EVENTS.
    const inSource = `${machines.subjectPrefix}.copied.${id}y`;
    nc.publish(`$JS.API.DIRECT.GET.${machines.name}`, JSON.stringify({ seq: first?.seq }), {
      reply: inSource,
    });
    await vi.waitFor(async () =>
      expect(await jsm.direct.getMessage(machines.name, { last_by_subj: inSource })).toBeTruthy(),
    );
    // A relay started now (a restarted gateway's) resumes from the real copies, past the planted one.
    const second = await EventsRelay.start(nc, jsm, { prefix });
    await machineLifecycle("copied");
    await live.waitFor(8);
    await second.stop();
    const created = (await truth(feed)).filter(
      (e) => e.event.app === "copied" && e.event.type === "machine.created",
    );
    expect(created).toHaveLength(2);
    const ids = live.events.map((e) => e.event.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(live.events).toHaveLength(8);
    expect(await jsm.direct.getMessage(events, { last_by_subj: `events.${inSource}` })).toBeNull();
  });

  it("runs one relay of several under the lease, and hands over without a gap or a double when it stops", async () => {
    const feed = await startFeed();
    const live = collector();
    feed.subscribe({ filter: { app: "leased" }, onEvent: live.onEvent });
    await relay?.stop();
    const a = await runRelayUnderLease(nc, jsm, { prefix, holder: `a-${process.pid}` });
    const b = await runRelayUnderLease(nc, jsm, { prefix, holder: `b-${process.pid}` });
    expect([a.running(), b.running()]).toEqual([true, false]);
    await machineLifecycle("leased");
    await live.waitFor(4);
    await a.stop();
    await vi.waitFor(() => expect(b.running()).toBe(true), { timeout: 5_000, interval: 20 });
    await machineLifecycle("leased");
    await live.waitFor(8);
    await b.stop();
    relay = await mainRelay();
    const ids = live.events.map((e) => e.event.id);
    expect(new Set(ids).size).toBe(8);
    expect(live.events.map((e) => e.event)).toEqual(
      (await truth(feed)).filter((e) => e.event.app === "leased").map((e) => e.event),
    );
  });

  it("copies a stream created after it, and names a Postgres cluster's org from its create event", async () => {
    const stream = streamOf(pgclustersStream);
    await ensureStream(jsm, stream);
    const cluster = `pg${process.pid}`;
    const publish = (events: PgClusterEvent[]) =>
      js.publish(
        `${stream.subjectPrefix}.${cluster}`,
        encodeBatch(stream, cluster, events, { commandId: crypto.randomUUID() }),
        { headers: eventTypesHeaders(events) },
      );
    await publish([
      {
        type: "PgClusterCreateRequested",
        data: hangar.v1.PgClusterCreateRequested.create({ cluster, org: "globex" }),
      },
    ]);
    // A feed started after the create knows the cluster's org only by looking its first message up.
    const deadline = Date.now() + 15_000;
    for (;;) {
      if ((await truth(await startFeed())).some((e) => e.event.subject === cluster)) break;
      if (Date.now() > deadline) throw new Error(`EVENTS never got ${stream.name}'s messages`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const feed = await startFeed();
    const live = collector();
    feed.subscribe({ filter: { org: "globex" }, onEvent: live.onEvent });
    await publish([
      {
        type: "PgMemberPromoted",
        data: hangar.v1.PgMemberPromoted.create({ cluster, memberId: "m1", timeline: 2 }),
      },
    ]);
    await live.waitFor(1);
    expect(live.events[0]?.event).toMatchObject({
      type: "pgcluster.member_promoted",
      org: "globex",
      app: null,
      subject: cluster,
    });
  });
});

describe("the feed", () => {
  it("fans one tail out to many subscribers, each through its own filter", async () => {
    const feed = await startFeed();
    const all = collector();
    const acme = collector();
    const other = collector();
    const started = collector();
    const apiOnly = collector();
    feed.subscribe({ filter: {}, onEvent: all.onEvent });
    feed.subscribe({ filter: { org: "acme" }, onEvent: acme.onEvent });
    feed.subscribe({ filter: { org: "globex" }, onEvent: other.onEvent });
    feed.subscribe({ filter: { types: new Set(["machine.started"]) }, onEvent: started.onEvent });
    feed.subscribe({ filter: { org: "acme", apps: new Set(["api"]) }, onEvent: apiOnly.onEvent });
    await machineLifecycle("web");
    await machineLifecycle("api");
    await machineLifecycle("other");
    await all.waitFor(12);
    await other.waitFor(4);
    expect(acme.events.map((e) => e.event.app)).toEqual([...Array(4).fill("web"), ...Array(4).fill("api")]);
    expect(other.events.every((e) => e.event.org === "globex")).toBe(true);
    expect(started.events.map((e) => e.event.app)).toEqual(["web", "api", "other"]);
    expect(apiOnly.events.map((e) => e.event.app)).toEqual(Array(4).fill("api"));
  });

  it("resumes from any id, from its ring or an ordered consumer, without a gap or a double, while events keep coming", async () => {
    // A ring of 3 events: most resumes must read their history from the stream.
    const feed = await startFeed(3);
    const first = feed.lastSeq;
    for (let i = 0; i < 5; i++) await machineLifecycle("web");
    const expected = await truthOf(feed, first, 20);
    expect(expected.length).toBe(20);
    const runs: Promise<void>[] = [];
    const subs: { after: FeedPosition; c: ReturnType<typeof collector> }[] = [];
    // Resume from every id, including one inside a two-event message, while five more machines run.
    for (const e of expected) {
      const after = parseEventId(e.event.id) as FeedPosition;
      const c = collector();
      feed.subscribe({ filter: {}, after, onEvent: c.onEvent, onEnd: c.onEnd });
      subs.push({ after, c });
    }
    for (let i = 0; i < 5; i++) runs.push(machineLifecycle("api").then(() => {}));
    await Promise.all(runs);
    const all = await truthOf(feed, first, 40);
    expect(all.length).toBe(40);
    for (const { after, c } of subs) {
      const want = all.filter((e) => e.isAfter(after)).map((e) => e.event.id);
      await c.waitFor(want.length);
      await new Promise((r) => setTimeout(r, 50));
      expect(c.events.map((e) => e.event.id)).toEqual(want);
      expect(c.ended).toBeUndefined();
    }
  });

  it("resumes inside a two-event decision that came before the feed started", async () => {
    const stream = streamOf(machinesStream);
    const aggregateId = `web.split${process.pid}`;
    const ack = await js.publish(
      `${stream.subjectPrefix}.${aggregateId}`,
      encodeBatch(
        stream,
        aggregateId,
        [
          {
            type: "MachineCreated",
            data: hangar.v1.MachineCreated.create({ machineId: "split", app: "web" }),
          },
          {
            type: "MachineStartRequested",
            data: hangar.v1.MachineStartRequested.create({ instanceId: "i" }),
          },
        ],
        { commandId: crypto.randomUUID() },
      ),
      { headers: eventTypesHeaders([{ type: "MachineCreated" }, { type: "MachineStartRequested" }]) },
    );
    // EVENTS holds it once its source has copied it: wait for the feed to start after it.
    let feed = await startFeed();
    while ((await truth(feed, feed.lastSeq - 1)).every((e) => e.event.subject !== aggregateId)) {
      await new Promise((r) => setTimeout(r, 20));
      feed = await startFeed();
    }
    expect(ack.seq).toBeGreaterThan(0);
    const seq = feed.lastSeq;
    const c = collector();
    feed.subscribe({ filter: {}, after: { seq, index: 0 }, onEvent: c.onEvent });
    await c.waitFor(1);
    expect(c.events.map((e) => [e.event.id, e.event.type])).toEqual([
      [`${seq}.1`, "machine.start_requested"],
    ]);
  });

  it("ends a subscriber whose history read falls too far behind, so it resumes by id", async () => {
    const feed = await startFeed(1);
    const from = feed.lastSeq;
    for (let i = 0; i < 3; i++) await machineLifecycle("web");
    const c = collector();
    // History to read (12 events) while 8 live ones arrive with room for 2.
    feed.subscribe({ filter: {}, after: { seq: from }, maxPending: 2, onEvent: c.onEvent, onEnd: c.onEnd });
    await Promise.all([machineLifecycle("web"), machineLifecycle("web")]);
    const deadline = Date.now() + 10_000;
    while (c.ended === undefined && c.events.length < 20 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    // Either the history was read before the live events piled up (then everything came, in order), or it was ended.
    const ids = c.events.map((e) => e.event.id);
    const want = (await truth(feed, from)).map((e) => e.event.id);
    if (c.ended === "behind") expect(want.slice(0, ids.length)).toEqual(ids);
    else expect(ids).toEqual(want);
  });
});

describe("sseStream", () => {
  async function readFrames(body: ReadableStream<Uint8Array>): Promise<string[]> {
    const text = await new Response(body).text();
    return text.split("\n\n").filter((f) => f !== "");
  }

  it("ends a client that does not read once its queue is full, after what was queued, and stops its subscription", async () => {
    const feed = await startFeed();
    const before = feed.subscribers;
    let reason: FeedEndReason | undefined;
    const body = sseStream(feed, { filter: {}, maxQueued: 5, onEnd: (r) => (reason = r) });
    expect(feed.subscribers).toBe(before + 1);
    for (let i = 0; i < 3; i++) await machineLifecycle("web");
    const deadline = Date.now() + 10_000;
    while (reason === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(reason).toBe("behind");
    expect(feed.subscribers).toBe(before);
    const frames = await readFrames(body);
    expect(frames[0]).toBe(": hangar events");
    const ids = frames.slice(1).map((f) => /^id: (\S+)$/m.exec(f)?.[1]);
    // The frames queued before the end, each a whole event, in order.
    expect(ids.length).toBeGreaterThanOrEqual(5);
    for (const f of frames.slice(1)) {
      const data = JSON.parse(/^data: (.*)$/m.exec(f)?.[1] ?? "null");
      expect(data.id).toBe(/^id: (\S+)$/m.exec(f)?.[1]);
    }
  });

  it("sends a heartbeat comment and stops its subscription when the client goes away", async () => {
    const feed = await startFeed();
    const before = feed.subscribers;
    const body = sseStream(feed, { filter: {}, heartbeatMs: 50 });
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes(": heartbeat")) text += decoder.decode((await reader.read()).value);
    await reader.cancel();
    expect(feed.subscribers).toBe(before);
  });
});
