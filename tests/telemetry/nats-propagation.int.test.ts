import { extractTraceContext, injectTraceContext, SpanKind, tracer } from "@hangar/telemetry";
import { type InMemoryTracing, startInMemoryTracing } from "@hangar/telemetry/testing";
// Types `inject("natsUrl")`.
import type {} from "@hangar/testkit";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, expect, inject, it } from "vitest";

let tracing: InMemoryTracing;
let nc: NatsConnection;
beforeEach(async () => {
  tracing = startInMemoryTracing();
  nc = await connect({ servers: inject("natsUrl") });
});
afterEach(async () => {
  await nc.close();
  await tracing.shutdown();
});

it("parents the consumer span on the producer span through NATS message headers", async () => {
  const subject = `telemetry.propagation.${crypto.randomUUID()}`;
  const consumed = new Promise<void>((resolve, reject) => {
    nc.subscribe(subject, {
      max: 1,
      callback: (err, msg) => {
        if (err) return reject(err);
        const parent = extractTraceContext(msg.headers);
        tracer().startActiveSpan("consume", { kind: SpanKind.CONSUMER }, parent, (span) => {
          span.end();
          resolve();
        });
      },
    });
  });

  tracer().startActiveSpan("publish", { kind: SpanKind.PRODUCER }, (span) => {
    const h = headers();
    injectTraceContext(h);
    nc.publish(subject, "payload", { headers: h });
    span.end();
  });
  await consumed;

  const producer = tracing.spans().find((s) => s.kind === SpanKind.PRODUCER);
  const consumer = tracing.spans().find((s) => s.kind === SpanKind.CONSUMER);
  expect(producer).toBeDefined();
  expect(consumer?.spanContext().traceId).toBe(producer?.spanContext().traceId);
  expect(consumer?.parentSpanContext?.spanId).toBe(producer?.spanContext().spanId);
  expect(consumer?.parentSpanContext?.isRemote).toBe(true);
});
