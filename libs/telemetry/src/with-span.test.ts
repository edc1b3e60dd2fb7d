import { SpanStatusCode } from "@opentelemetry/api";
import { afterEach, beforeEach, expect, it } from "vitest";
import { type InMemoryTracing, startInMemoryTracing } from "./testing.js";
import { withSpan } from "./with-span.js";

let tracing: InMemoryTracing;
beforeEach(() => {
  tracing = startInMemoryTracing();
});
afterEach(() => tracing.shutdown());

it("parents spans started inside on the span, and ends it with the work", async () => {
  const result = await withSpan("outer", {}, async () => withSpan("inner", {}, async () => 42));
  expect(result).toBe(42);
  const outer = tracing.spans().find((s) => s.name === "outer");
  const inner = tracing.spans().find((s) => s.name === "inner");
  expect(inner?.parentSpanContext?.spanId).toBe(outer?.spanContext().spanId);
  expect(outer?.status.code).toBe(SpanStatusCode.UNSET);
});

it("marks the span failed and rethrows when the work throws", async () => {
  await expect(
    withSpan("failing", {}, async () => {
      throw new Error("no room");
    }),
  ).rejects.toThrow("no room");
  expect(tracing.spans()[0]?.status).toEqual({ code: SpanStatusCode.ERROR, message: "no room" });
});
