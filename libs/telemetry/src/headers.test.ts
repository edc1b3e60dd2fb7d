import { trace } from "@opentelemetry/api";
import { afterEach, beforeEach, expect, it } from "vitest";
import { extractTraceContext, type HeaderCarrier, injectTraceContext } from "./headers.js";
import { type InMemoryTracing, startInMemoryTracing } from "./testing.js";
import { tracer } from "./tracer.js";

let tracing: InMemoryTracing;
beforeEach(() => {
  tracing = startInMemoryTracing();
});
afterEach(() => tracing.shutdown());

/** Mimics MsgHdrs: a missing key reads as "". */
function mapCarrier(): HeaderCarrier & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return { map, get: (k) => map.get(k) ?? "", set: (k, v) => map.set(k, v) };
}

it("round-trips the active span context through headers", () => {
  const headers = mapCarrier();
  const sent = tracer().startActiveSpan("send", (span) => {
    injectTraceContext(headers);
    span.end();
    return span.spanContext();
  });

  expect(headers.map.get("traceparent")).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  const received = trace.getSpanContext(extractTraceContext(headers));
  expect(received).toMatchObject({ traceId: sent.traceId, spanId: sent.spanId, isRemote: true });
});

it("extracts nothing from absent or empty headers", () => {
  expect(trace.getSpanContext(extractTraceContext(undefined))).toBeUndefined();
  expect(trace.getSpanContext(extractTraceContext(mapCarrier()))).toBeUndefined();
});
