import { Writable } from "node:stream";
import { afterEach, beforeEach, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import { type InMemoryTracing, startInMemoryTracing } from "./testing.js";
import { tracer } from "./tracer.js";

let tracing: InMemoryTracing;
beforeEach(() => {
  tracing = startInMemoryTracing();
});
afterEach(() => tracing.shutdown());

function capture(): { destination: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return {
    destination,
    lines: () =>
      chunks
        .join("")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l)),
  };
}

it("adds trace_id and span_id of the active span, and only then", () => {
  const { destination, lines } = capture();
  const log = createLogger("svc", { destination });

  const ids = tracer().startActiveSpan("work", (span) => {
    log.info("inside");
    span.end();
    return span.spanContext();
  });
  log.info("outside");

  const [inside, outside] = lines();
  expect(inside).toMatchObject({ service: "svc", msg: "inside", trace_id: ids.traceId, span_id: ids.spanId });
  expect(outside).toMatchObject({ service: "svc", msg: "outside" });
  expect(outside).not.toHaveProperty("trace_id");
  expect(outside).not.toHaveProperty("span_id");
});

it("takes its level from the options", () => {
  const { destination, lines } = capture();
  const log = createLogger("svc", { level: "warn", destination });
  log.info("dropped");
  log.warn("kept");
  expect(lines().map((l) => l.msg)).toEqual(["kept"]);
});
