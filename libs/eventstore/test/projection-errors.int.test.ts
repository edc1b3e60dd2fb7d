import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DomainError, EventStore, ensureStream, isRetryable, runProjection } from "../src/mod.js";
import { counterStreamFor, uniquePrefix } from "./counter.js";

let nc: NatsConnection;
let store: EventStore;
const stream = counterStreamFor(uniquePrefix("projerr"));

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, stream);
});
afterAll(async () => {
  store?.close();
  await nc?.drain();
});

describe("a projection's failures", () => {
  it("retries a retryable failure (nak) and terminates only the message a terminal failure is about (term)", async () => {
    const seqs: number[] = [];
    for (let i = 1; i <= 5; i++) {
      const ack = await store.append(
        stream,
        "p1",
        [{ type: "Incremented", data: { by: 1, totalAfter: i } }],
        {
          expectedSeq: seqs.at(-1) ?? 0,
          commandId: `inc-${i}`,
        },
      );
      seqs.push(ack.seq);
    }
    const [, , poison, , flaky] = seqs as [number, number, number, number, number];
    const applied = new Set<number>();
    const errors: unknown[] = [];
    let flakyFailures = 0;
    const projection = await runProjection(jetstream(nc), stream, {
      name: "errors",
      retryDelayMs: 50,
      async handle(batch) {
        const at = batch.map((m) => m.seq);
        // A message the projection can never apply, whatever batch it comes in.
        if (at.includes(poison))
          throw new DomainError(`message ${poison} is not for this projection`, "invalid_argument");
        // A passing failure: the database was away once.
        if (at.includes(flaky) && flakyFailures++ === 0) throw new Error("connection reset");
        for (const s of at) applied.add(s);
      },
      onError: (err) => errors.push(err),
    });
    await projection.waitFor(flaky);
    await projection.stop();

    expect([...applied].sort((a, b) => a - b)).toEqual(seqs.filter((s) => s !== poison));
    expect(errors.some((e) => e instanceof DomainError && !isRetryable(e))).toBe(true);
    expect(errors.some((e) => e instanceof Error && e.message === "connection reset" && isRetryable(e))).toBe(
      true,
    );
    const info = await store.jsm.consumers.info(stream.name, "errors");
    // Every message is settled: the poison one terminated, none waiting for an ack or a redelivery.
    expect(info.ack_floor.stream_seq).toBe(flaky);
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_pending).toBe(0);
  });
});
