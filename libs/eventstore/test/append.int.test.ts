import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import {
  CommandHandler,
  ConcurrencyError,
  EventStore,
  ensureStream,
  isDomainError,
  jsonSnapshots,
  loadAggregate,
  SnapshotStore,
} from "../src/mod.js";
import { type CounterState, counterDecider, counterStreamFor, uniquePrefix } from "./counter.js";

let nc: NatsConnection;
let store: EventStore;
const stream = counterStreamFor(uniquePrefix("append"));
const inc = (by = 1) => ({ type: "Incremented" as const, data: { by, totalAfter: by } });

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, stream);
});
afterAll(async () => {
  await nc?.drain();
});

describe("stream set-up", () => {
  it("creates a file stream that refuses delete and purge, and is idempotent", async () => {
    await ensureStream(store.jsm, stream);
    const info = await store.jsm.streams.info(stream.name);
    expect(info.config).toMatchObject({
      storage: "file",
      deny_delete: true,
      deny_purge: true,
      allow_direct: true,
    });
    expect(info.config.subjects).toEqual([`${stream.subjectPrefix}.>`]);
    await expect(store.jsm.streams.purge(stream.name)).rejects.toThrow();
  });

  it("lets several instances set up a new stream at once", async () => {
    const fresh = counterStreamFor(uniquePrefix("setup"));
    await Promise.all([1, 2, 3].map(() => ensureStream(store.jsm, fresh)));
    expect((await store.jsm.streams.info(fresh.name)).config.name).toBe(fresh.name);
  });
});

describe("append", () => {
  it("stores one decision as one message at the next subject sequence, with its envelope", async () => {
    const id = "a1";
    const first = await store.append(stream, id, [inc(1), inc(2)], {
      expectedSeq: 0,
      commandId: "c1",
      correlationId: "flow-1",
    });
    expect(first.duplicate).toBe(false);
    const { events, lastSeq } = await store.readAggregate(stream, id);
    expect(lastSeq).toBe(first.seq);
    expect(events.map((e) => e.event)).toEqual([inc(1), inc(2)]);
    expect(events.map((e) => [e.seq, e.index])).toEqual([
      [first.seq, 0],
      [first.seq, 1],
    ]);
    for (const e of events) {
      expect(e).toMatchObject({ aggregateId: id, causationId: "c1", correlationId: "flow-1" });
      expect(e.eventId).toMatch(/^[0-9a-f-]{36}$/);
      expect(Math.abs(e.timeUnixMs - Date.now())).toBeLessThan(60_000);
    }
    expect(events[0]?.eventId).not.toBe(events[1]?.eventId);
  });

  it("reads an aggregate's tail, short (direct gets) or long (a consumer after them), in order and only its own", async () => {
    const seqs: number[] = [];
    for (let i = 0; i < 9; i++) {
      const mine = await store.append(stream, "tail", [inc(i)], {
        expectedSeq: seqs.at(-1) ?? 0,
        commandId: `t${i}`,
      });
      seqs.push(mine.seq);
      // Another aggregate's message between each: the reads must skip it.
      await store.append(stream, `other${i}`, [inc(100 + i)], { expectedSeq: 0, commandId: `o${i}` });
    }
    const all = await store.readAggregate(stream, "tail");
    expect(all.events.map((e) => e.event)).toEqual(Array.from({ length: 9 }, (_, i) => inc(i)));
    expect(all.events.map((e) => e.seq)).toEqual(seqs);
    const short = await store.readAggregate(stream, "tail", seqs[6]);
    expect(short.events.map((e) => e.event)).toEqual([inc(7), inc(8)]);
    const bounded = await store.readAggregate(stream, "tail", seqs[1], seqs[7]);
    expect(bounded.events.map((e) => e.seq)).toEqual(seqs.slice(2, 8));
  });

  it("reads an aggregate's tail with a consumer where a direct get does not find it (a replica behind, allow_direct)", async () => {
    const id = "lagging";
    const seqs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await store.append(stream, id, [inc(i)], {
        expectedSeq: seqs.at(-1) ?? 0,
        commandId: `l${i}`,
      });
      seqs.push(r.seq);
    }
    // A replica that answers direct gets but has not stored these messages yet: every direct get by
    // sequence (and next-by-subject) finds nothing; last-by-subject is answered as before.
    const direct = store.jsm.direct;
    const real = direct.getMessage.bind(direct);
    const spy = vi
      .spyOn(direct, "getMessage")
      .mockImplementation(async (name, query) => ("seq" in query ? null : real(name, query)));
    try {
      const read = await store.readAggregate(stream, id);
      expect(read.events.map((e) => e.event)).toEqual([inc(0), inc(1), inc(2)]);
      expect(read.lastSeq).toBe(seqs[2]);
      expect(spy).toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
    await expect(store.readMessage(stream, 10_000_000)).rejects.toThrow(/no message 10000000/);
  });

  it("rejects an append on a stale sequence with ConcurrencyError carrying expected and actual", async () => {
    const id = "a2";
    const a = await store.append(stream, id, [inc()], { expectedSeq: 0, commandId: "c1" });
    const b = await store.append(stream, id, [inc()], { expectedSeq: a.seq, commandId: "c2" });
    const err = await store
      .append(stream, id, [inc()], { expectedSeq: a.seq, commandId: "c3" })
      .catch((e) => e);
    expect(err).toBeInstanceOf(ConcurrencyError);
    expect(err).toMatchObject({
      expected: a.seq,
      actual: b.seq,
      code: "CONCURRENCY_CONFLICT",
      retryable: true,
    });
    const fresh = await store
      .append(stream, id, [inc()], { expectedSeq: 0, commandId: "c4" })
      .catch((e) => e);
    expect(fresh).toMatchObject({ name: "ConcurrencyError", expected: 0, actual: b.seq });
    expect((await store.readAggregate(stream, id)).events).toHaveLength(2);
  });

  it("stores a repeated command id once and reports the duplicate", async () => {
    const id = "a3";
    const a = await store.append(stream, id, [inc()], { expectedSeq: 0, commandId: "same" });
    const b = await store.append(stream, id, [inc()], { expectedSeq: 0, commandId: "same" });
    expect(b).toEqual({ seq: a.seq, duplicate: true });
    expect((await store.readAggregate(stream, id)).events).toHaveLength(1);
  });

  it("refuses aggregate ids that would be wildcards or empty subject tokens", async () => {
    for (const bad of ["*", ">", "a..b", "", "a b", "x.>"]) {
      await expect(store.append(stream, bad, [inc()], { expectedSeq: 0, commandId: "x" })).rejects.toThrow(
        /invalid aggregate id/,
      );
    }
  });

  it("reads an empty aggregate as sequence 0 without waiting", async () => {
    expect(await store.readAggregate(stream, "nobody")).toEqual({ events: [], lastSeq: 0 });
  });
});

describe("command handler", () => {
  it("returns the first result for a repeated command and appends nothing", async () => {
    const handler = new CommandHandler(store, stream, counterDecider);
    const first = await handler.handle("h1", { type: "Increment", by: 5 }, { commandId: "cmd-1" });
    const again = await handler.handle("h1", { type: "Increment", by: 5 }, { commandId: "cmd-1" });
    expect(first.duplicate).toBe(false);
    expect(again).toMatchObject({ duplicate: true, seq: first.seq, events: first.events });
    expect(again.state).toEqual({ total: 5, increments: 1 });
    expect((await store.readAggregate(stream, "h1")).events).toHaveLength(1);
  });

  it("recognises a repeated command after the server's duplicate window has passed", async () => {
    const shortWindow = counterStreamFor(uniquePrefix("window"), 200);
    await ensureStream(store.jsm, shortWindow);
    const first = await new CommandHandler(store, shortWindow, counterDecider).handle(
      "w1",
      { type: "Increment", by: 1 },
      { commandId: "late" },
    );
    await sleep(600);
    // A new handler (another instance, nothing cached) must find the command in the stored state.
    const again = await new CommandHandler(store, shortWindow, counterDecider).handle(
      "w1",
      { type: "Increment", by: 1 },
      { commandId: "late" },
    );
    expect(again).toMatchObject({ duplicate: true, seq: first.seq });
    expect((await store.readAggregate(shortWindow, "w1")).events).toHaveLength(1);
  });

  it("passes a decider's DomainError through and appends nothing", async () => {
    const handler = new CommandHandler(store, stream, counterDecider);
    const err = await handler
      .handle("h2", { type: "Increment", by: -1 }, { commandId: "bad" })
      .catch((e) => e);
    expect(isDomainError(err, "invalid_argument")).toBe(true);
    expect(err.retryable).toBe(false);
    expect(await store.lastSequence(stream, "h2")).toBe(0);
  });

  it("loads from a snapshot plus the tail, to the same state as a full load, and keeps idempotency", async () => {
    const snapshots = await SnapshotStore.open<CounterState>(nc, stream, jsonSnapshots());
    const handler = new CommandHandler(store, stream, counterDecider, { snapshots, snapshotEvery: 10 });
    for (let i = 1; i <= 25; i++)
      await handler.handle("s1", { type: "Increment", by: i }, { commandId: `s-${i}` });
    const snap = await snapshots.load("s1");
    expect(snap?.seq).toBeGreaterThan(0);
    expect(snap?.state.increments).toBe(20);
    const fromSnapshot = await loadAggregate(store, stream, counterDecider, "s1", snapshots);
    const full = await loadAggregate(store, stream, counterDecider, "s1");
    expect(fromSnapshot.state).toEqual(full.state);
    expect(fromSnapshot.state).toEqual({ total: (25 * 26) / 2, increments: 25 });
    expect(fromSnapshot.messagesSinceSnapshot).toBe(5);
    expect(fromSnapshot.seq).toBe(full.seq);
    const repeated = await handler.handle("s1", { type: "Increment", by: 3 }, { commandId: "s-3" });
    expect(repeated.duplicate).toBe(true);
    expect(repeated.events).toEqual([{ type: "Incremented", data: { by: 3, totalAfter: 6 } }]);
  });

  it("ignores a snapshot of another state version", async () => {
    const v1 = await SnapshotStore.open<CounterState>(nc, stream, jsonSnapshots(1));
    await v1.save("v", { seq: 1, state: { total: 999, increments: 1 }, commands: [] });
    const v2 = await SnapshotStore.open<CounterState>(nc, stream, jsonSnapshots(2));
    expect(await v2.load("v")).toBeUndefined();
  });

  it("catches up when its cached aggregate went stale because another instance wrote", async () => {
    const a = new CommandHandler(store, stream, counterDecider);
    const b = new CommandHandler(store, stream, counterDecider);
    for (let i = 0; i < 10; i++) {
      const writer = i % 3 === 0 ? b : a;
      await writer.handle("shared", { type: "Increment", by: 1 }, { commandId: `shared-${i}` });
    }
    const last = await a.handle("shared", { type: "Increment", by: 1 }, { commandId: "shared-last" });
    expect(last.state).toEqual({ total: 11, increments: 11 });
    expect(last.events).toEqual([{ type: "Incremented", data: { by: 1, totalAfter: 11 } }]);
    // b saw shared-0 and others; a command b never handled but a did is still recognised by b.
    const repeat = await b.handle("shared", { type: "Increment", by: 1 }, { commandId: "shared-1" });
    expect(repeat.duplicate).toBe(true);
  });

  it("never decides nothing, or refuses, on a cached state another instance made stale", async () => {
    const a = new CommandHandler(store, stream, counterDecider);
    const b = new CommandHandler(store, stream, counterDecider);
    // a caches a total of 0, where Reset decides nothing; b then moves the total to 5.
    await a.handle("stale-noop", { type: "Reset" }, { commandId: "stale-noop-0" });
    await b.handle("stale-noop", { type: "Increment", by: 5 }, { commandId: "stale-noop-1" });
    const reset = await a.handle("stale-noop", { type: "Reset" }, { commandId: "stale-noop-2" });
    expect(reset.events).toEqual([{ type: "Reset", data: {} }]);
    expect(reset.state.total).toBe(0);
  });

  it("uses fresh ids: a new command with a new id is applied", async () => {
    const handler = new CommandHandler(store, stream, counterDecider);
    const a = await handler.handle("h3", { type: "Increment", by: 1 }, { commandId: randomUUID() });
    const b = await handler.handle("h3", { type: "Increment", by: 1 }, { commandId: randomUUID() });
    expect(b.seq).toBeGreaterThan(a.seq);
    expect(b.state.total).toBe(2);
  });
});
