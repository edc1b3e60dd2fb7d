// A message on a stream's subjects that the event store did not append (no Hangar-Event-Types
// header) is no event: every reader passes over it. The way in measured here is nats-server's own:
// any client allowed one JetStream API request may name a stream's subject as the reply, and the
// server stores its JSON answer there. A direct get answered that way copies a real event, headers
// and all, which decodes: the server's Nats-Stream header among the stored ones tells it apart.
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import {
  CommandHandler,
  EventStore,
  ensureStream,
  loadAggregate,
  plantedDelivery,
  plantedStored,
  replay,
} from "../src/mod.js";
import { type CounterState, counterDecider, counterStreamFor, uniquePrefix } from "./counter.js";

let nc: NatsConnection;
let store: EventStore;
const stream = counterStreamFor(uniquePrefix("foreign"));
const subject = (id: string) => `${stream.subjectPrefix}.${id}`;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, stream);
});
afterAll(async () => {
  await nc?.drain();
});

/** Has the server answer a stream info request into `reply`, and waits until the answer is stored. */
async function plantApiAnswer(reply: string): Promise<number> {
  const before = (await store.jsm.streams.info(stream.name)).state.last_seq;
  nc.publish(`$JS.API.STREAM.INFO.${stream.name}`, "", { reply });
  for (;;) {
    const info = await store.jsm.streams.info(stream.name);
    if (info.state.last_seq > before) return info.state.last_seq;
    await new Promise((r) => setTimeout(r, 10));
  }
}

it("loads, rebuilds and appends past a foreign message on an aggregate's subject", async () => {
  const handler = new CommandHandler(store, stream, counterDecider);
  await handler.handle("c1", { type: "Increment", by: 2 }, { commandId: "f-1" });
  const planted = await plantApiAnswer(subject("c1"));
  // The server did store its answer, headers and all, on the aggregate's subject.
  const stored = await store.jsm.streams.getMessage(stream.name, { seq: planted });
  expect(stored?.json<{ type: string }>().type).toMatch(/stream_info_response/);

  // Loaded from the events alone; its version is the subject's last message.
  const loaded = await loadAggregate(store, stream, counterDecider, "c1");
  expect([loaded.state, loaded.seq]).toEqual([{ total: 2, increments: 1 }, planted]);
  expect(await store.readMessage(stream, planted)).toEqual([]);
  // A new handler (nothing cached) appends after it.
  const next = await new CommandHandler(store, stream, counterDecider).handle(
    "c1",
    { type: "Increment", by: 3 },
    { commandId: "f-2" },
  );
  expect(next.state).toEqual({ total: 5, increments: 2 });
  // And the one that cached the version before it catches up and appends too.
  const again = await handler.handle("c1", { type: "Increment", by: 1 }, { commandId: "f-3" });
  expect(again.state).toEqual({ total: 6, increments: 3 });

  // A rebuild of the whole stream folds the events and passes over the planted answer.
  const second = await plantApiAnswer(subject("c2"));
  const states = new Map<string, CounterState>();
  const passed: number[] = [];
  const r = await replay(store, stream, {
    onPassed: (seq) => passed.push(seq),
    onEvents(events, aggregateId) {
      let s = states.get(aggregateId) ?? counterDecider.initialState();
      for (const e of events) s = counterDecider.evolve(s, e.event);
      states.set(aggregateId, s);
    },
  });
  const done = await r.caughtUp;
  await r.stop();
  expect(done.messages).toBe(5);
  expect(done.events).toBe(3);
  expect(passed).toEqual([planted, second]);
  expect(Object.fromEntries(states)).toEqual({ c1: { total: 6, increments: 3 } });
});

// Its own stream, with a short duplicate window: a copy carries the event's Nats-Msg-Id, so the
// server drops one made within the window; older events can be copied. And it carries the event's
// Nats-Expected-Last-Subject-Sequence, so only an aggregate's first event (expected 0) lands, and
// only on an empty subject.
const copies = counterStreamFor(uniquePrefix("copies"), 200);

it("takes a real event the server copied onto another aggregate's subject (a direct get's answer) for no event", async () => {
  await ensureStream(store.jsm, copies);
  const on = (id: string) => `${copies.subjectPrefix}.${id}`;
  const plant = async (seq: number, reply: string) => {
    const before = (await store.jsm.streams.info(copies.name)).state.last_seq;
    nc.publish(`$JS.API.DIRECT.GET.${copies.name}`, JSON.stringify({ seq }), { reply });
    for (;;) {
      const info = await store.jsm.streams.info(copies.name);
      if (info.state.last_seq > before) return info.state.last_seq;
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const handler = new CommandHandler(store, copies, counterDecider);
  const made = await handler.handle("p1", { type: "Increment", by: 5 }, { commandId: "p-1" });
  await new Promise((r) => setTimeout(r, 400));
  const copy = await plant(made.seq, on("p2"));
  // The copy is the event, decodable, with Hangar-Event-Types: only the server's header tells.
  const stored = await store.jsm.streams.getMessage(copies.name, { seq: copy });
  expect(stored?.header?.get("Hangar-Event-Types")).toBeTruthy();
  expect(stored && plantedStored(stored)).toBe(true);
  const real = await store.jsm.direct.getMessage(copies.name, { seq: made.seq });
  expect(real && plantedStored(real)).toBe(false);
  const copyDirect = await store.jsm.direct.getMessage(copies.name, { seq: copy });
  expect(copyDirect && plantedStored(copyDirect)).toBe(true);
  expect(await store.readMessage(copies, copy)).toEqual([]);
  // A JetStream consumer's delivery (projections, webhooks) tells it too, from the raw headers.
  const consumer = await jetstream(nc).consumers.get(copies.name);
  const delivered = new Map<number, boolean>();
  for await (const m of await consumer.fetch({ max_messages: 2 })) delivered.set(m.seq, plantedDelivery(m));
  expect(delivered).toEqual(
    new Map([
      [made.seq, false],
      [copy, true],
    ]),
  );

  // Loads: p2 has no event (its version is the copy's), p1 its one.
  const p2 = await loadAggregate(store, copies, counterDecider, "p2");
  expect([p2.state, p2.seq]).toEqual([counterDecider.initialState(), copy]);
  const p1 = await loadAggregate(store, copies, counterDecider, "p1");
  expect(p1.state).toEqual({ total: 5, increments: 1 });
  // Appends go on after the copy.
  const next = await new CommandHandler(store, copies, counterDecider).handle(
    "p2",
    { type: "Increment", by: 1 },
    { commandId: "p-2" },
  );
  expect(next.state).toEqual({ total: 1, increments: 1 });

  // A rebuild folds the events only.
  const states = new Map<string, CounterState>();
  const passed: number[] = [];
  const r = await replay(store, copies, {
    onPassed: (seq) => passed.push(seq),
    onEvents(events, aggregateId) {
      let s = states.get(aggregateId) ?? counterDecider.initialState();
      for (const e of events) s = counterDecider.evolve(s, e.event);
      states.set(aggregateId, s);
    },
  });
  await r.caughtUp;
  await r.stop();
  expect(passed).toEqual([copy]);
  expect(Object.fromEntries(states)).toEqual({
    p1: { total: 5, increments: 1 },
    p2: { total: 1, increments: 1 },
  });
});
