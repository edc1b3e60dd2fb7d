import { type InMemoryTracing, startInMemoryTracing } from "@hangar/telemetry/testing";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { SpanKind, trace } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { EventStore, ensureStream, replay, runProjection } from "../src/mod.js";
import { counterStreamFor, uniquePrefix } from "./counter.js";

let nc: NatsConnection;
let tracing: InMemoryTracing;
const stream = counterStreamFor(uniquePrefix("trace"));

beforeAll(async () => {
  tracing = startInMemoryTracing();
  nc = await connect({ servers: inject("natsUrl") });
});
afterAll(async () => {
  await nc?.drain();
  await tracing?.shutdown();
});

describe("trace context through NATS headers", () => {
  it("makes the append's publish span the parent of the span of the handler that consumed it", async () => {
    const store = await EventStore.connect(nc);
    await ensureStream(store.jsm, stream);
    const ack = await store.append(stream, "t1", [{ type: "Incremented", data: { by: 1, totalAfter: 1 } }], {
      expectedSeq: 0,
      commandId: "traced",
    });
    const handled: number[] = [];
    const projection = await runProjection(jetstream(nc), stream, {
      name: "traced",
      async handle(batch) {
        for (const m of batch) handled.push(m.seq);
      },
    });
    await projection.waitFor(ack.seq);
    await projection.stop();
    expect(handled).toEqual([ack.seq]);

    const spans = tracing.spans();
    const producer = spans.find((s) => s.kind === SpanKind.PRODUCER);
    const consumer = spans.find((s) => s.kind === SpanKind.CONSUMER);
    expect(producer?.name).toBe(`${stream.name} publish`);
    expect(consumer?.name).toBe("traced process");
    expect(consumer?.spanContext().traceId).toBe(producer?.spanContext().traceId);
    expect(consumer?.parentSpanContext?.spanId).toBe(producer?.spanContext().spanId);
    expect(consumer?.attributes["messaging.nats.stream_sequence"]).toBe(ack.seq);
  });

  it("runs a replay's live messages in their publisher's trace context, and replayed history in none", async () => {
    const store = await EventStore.connect(nc);
    const own = counterStreamFor(uniquePrefix("trace-replay"));
    await ensureStream(store.jsm, own);
    const event = (n: number) => [{ type: "Incremented" as const, data: { by: 1, totalAfter: n } }];
    await store.append(own, "h1", event(1), { expectedSeq: "any", commandId: "history" });
    const active: (string | undefined)[] = [];
    const r = await replay(store, own, {
      follow: true,
      onEvents: () => active.push(trace.getActiveSpan()?.spanContext().spanId),
    });
    await r.caughtUp;
    const live = await store.append(own, "h1", event(2), { expectedSeq: "any", commandId: "live" });
    while (r.lastSeq < live.seq) await new Promise((resolve) => setTimeout(resolve, 10));
    await r.stop();

    const publishes = tracing.spans().filter((s) => s.attributes["hangar.command_id"] === "live");
    expect(publishes).toHaveLength(1);
    expect(active).toEqual([undefined, publishes[0]?.spanContext().spanId]);
  });
});
