import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CommandHandler, ConcurrencyError, EventStore, ensureStream, fold } from "../src/mod.js";
import { counterDecider, counterStreamFor, uniquePrefix } from "./counter.js";

const WRITERS = 20;
let nc: NatsConnection;
let store: EventStore;
const stream = counterStreamFor(uniquePrefix("conc"));

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, stream);
});
afterAll(async () => {
  await nc?.drain();
});

describe("20 concurrent writers on one aggregate", () => {
  it("each guarded append either lands right after the sequence it expected or gets ConcurrencyError", async () => {
    const id = "raw";
    type Outcome = { expected: number; seq?: number; conflict?: ConcurrencyError };
    const outcomes: Outcome[] = [];
    // Every writer tries 10 times, each time on the sequence it last saw.
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        for (let i = 0; i < 10; i++) {
          const expected = await store.lastSequence(stream, id);
          try {
            const ack = await store.append(
              stream,
              id,
              [{ type: "Incremented", data: { by: 1, totalAfter: 0 } }],
              {
                expectedSeq: expected,
                commandId: `w${w}-${i}`,
              },
            );
            outcomes.push({ expected, seq: ack.seq });
          } catch (err) {
            if (!(err instanceof ConcurrencyError)) throw err;
            outcomes.push({ expected, conflict: err });
          }
        }
      }),
    );
    const stored = [...new Set((await store.readAggregate(stream, id)).events.map((e) => e.seq))];
    const successes = outcomes.filter((o) => o.seq !== undefined);
    const conflicts = outcomes.filter((o) => o.conflict);
    expect(successes.length + conflicts.length).toBe(WRITERS * 10);
    expect(conflicts.length).toBeGreaterThan(0);
    expect(successes.length).toBe(stored.length);
    for (const s of successes) {
      // The message stored before this one on the subject is exactly the one it expected.
      const index = stored.indexOf(s.seq as number);
      expect(index).toBeGreaterThanOrEqual(0);
      expect(index === 0 ? 0 : stored[index - 1]).toBe(s.expected);
    }
    for (const c of conflicts) {
      expect(c.conflict?.expected).toBe(c.expected);
      expect(c.conflict?.actual).toBeGreaterThan(c.expected);
    }
  });

  it("the retrying handler ends in the state of applying the commands one by one", async () => {
    const id = "handled";
    const handler = new CommandHandler(store, stream, counterDecider, { maxAttempts: 200 });
    const results = await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        const mine = [];
        for (let i = 0; i < 5; i++) {
          const by = w + 1;
          mine.push(await handler.handle(id, { type: "Increment", by }, { commandId: `h-${w}-${i}` }));
        }
        return mine;
      }),
    );
    const all = results.flat().sort((a, b) => a.seq - b.seq);
    expect(all.every((r) => !r.duplicate)).toBe(true);
    // Apply the same commands one by one, in the order they were stored.
    let state = counterDecider.initialState();
    for (const r of all) {
      const first = r.events[0];
      if (first?.type !== "Incremented") throw new Error(`unexpected events ${JSON.stringify(r.events)}`);
      const by = first.data.by;
      const expected = counterDecider.decide({ type: "Increment", by }, state);
      expect(r.events).toEqual(expected);
      state = fold(counterDecider, expected, state);
    }
    const { events } = await store.readAggregate(stream, id);
    const stored = fold(
      counterDecider,
      events.map((e) => e.event),
    );
    expect(stored).toEqual(state);
    expect(stored).toEqual({ total: 5 * ((WRITERS * (WRITERS + 1)) / 2), increments: WRITERS * 5 });
  });
});
