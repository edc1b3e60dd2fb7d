import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { EventStore, ensureStream, type ReplayProgress, replay } from "../src/mod.js";
import { type CounterState, counterDecider, counterStreamFor, uniquePrefix } from "./counter.js";

let nc: NatsConnection;
let store: EventStore;
const stream = counterStreamFor(uniquePrefix("replay"));
const AGGREGATES = 20;
const PER_AGGREGATE = 50;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, stream);
  for (let i = 1; i <= PER_AGGREGATE; i++) {
    await Promise.all(
      Array.from({ length: AGGREGATES }, (_, a) =>
        store.append(stream, `r${a}`, [{ type: "Incremented", data: { by: 1, totalAfter: i } }], {
          expectedSeq: "any",
          commandId: `r${a}-${i}`,
        }),
      ),
    );
  }
});
afterAll(async () => {
  await nc?.drain();
});

describe("replay", () => {
  it("folds the whole stream into memory, reports progress, and signals when caught up", async () => {
    const states = new Map<string, CounterState>();
    const progress: ReplayProgress[] = [];
    const r = await replay(store, stream, {
      progressEvery: 100,
      onProgress: (p) => progress.push(p),
      onEvents(events, aggregateId) {
        let s = states.get(aggregateId) ?? counterDecider.initialState();
        for (const e of events) s = counterDecider.evolve(s, e.event);
        states.set(aggregateId, s);
      },
    });
    const done = await r.caughtUp;
    expect(done.messages).toBe(AGGREGATES * PER_AGGREGATE);
    expect(done.pending).toBe(0);
    expect(progress.length).toBeGreaterThanOrEqual(10);
    expect(progress.map((p) => p.messages)).toEqual(
      [...progress.map((p) => p.messages)].sort((a, b) => a - b),
    );
    expect(states.size).toBe(AGGREGATES);
    for (const s of states.values()) expect(s).toEqual({ total: PER_AGGREGATE, increments: PER_AGGREGATE });
    await r.stop();
  });

  it("follows new events after catching up when asked to", async () => {
    const seen: string[] = [];
    const r = await replay(store, stream, {
      filter: `${stream.subjectPrefix}.r0`,
      follow: true,
      onEvents: (events) => {
        for (const e of events) seen.push(e.causationId);
      },
    });
    await r.caughtUp;
    expect(seen).toHaveLength(PER_AGGREGATE);
    await store.append(stream, "r0", [{ type: "Incremented", data: { by: 1, totalAfter: 51 } }], {
      expectedSeq: "any",
      commandId: "live",
    });
    for (let i = 0; i < 200 && !seen.includes("live"); i++) await sleep(10);
    expect(seen.at(-1)).toBe("live");
    await r.stop();
  });

  it("is caught up at once on a filter that matches nothing", async () => {
    const r = await replay(store, stream, {
      filter: `${stream.subjectPrefix}.nobody`,
      onEvents: () => {},
    });
    expect((await r.caughtUp).messages).toBe(0);
    await r.stop();
  });
});
