import { tracer as hangarTracer, SpanKind, SpanStatusCode } from "@hangar/telemetry";
import { type InMemoryTracing, startInMemoryTracing } from "@hangar/telemetry/testing";
import { Hono } from "hono";
import { afterEach, beforeEach, expect, it } from "vitest";
import type { ApiEnv } from "./context.js";
import { requestId } from "./request-id.js";
import { tracing } from "./tracing.js";

let memory: InMemoryTracing;
beforeEach(() => {
  memory = startInMemoryTracing();
});
afterEach(() => memory.shutdown());

const app = new Hono<ApiEnv>()
  .use(requestId(), tracing())
  .get("/v1/apps/:app_name", (c) => {
    // Stands for a backend call: a span started here must be a child of the server span.
    hangarTracer().startSpan("backend call").end();
    return c.json({});
  })
  .get("/v1/fail", (c) => c.json({}, 503));

it("runs the request in a server span named by route, continuing the client's trace", async () => {
  const traceId = "0af7651916cd43dd8448eb211c80319c";
  const res = await app.request("/v1/apps/web", {
    headers: { traceparent: `00-${traceId}-b7ad6b7169203331-01`, "fly-request-id": "r-9" },
  });
  expect(res.status).toBe(200);
  const [child, span] = memory.spans();
  expect(child?.name).toBe("backend call");
  expect(child?.parentSpanContext?.spanId).toBe(span?.spanContext().spanId);
  expect(span?.name).toBe("GET /v1/apps/:app_name");
  expect(span?.kind).toBe(SpanKind.SERVER);
  expect(span?.spanContext().traceId).toBe(traceId);
  expect(span?.parentSpanContext?.spanId).toBe("b7ad6b7169203331");
  expect(span?.attributes).toMatchObject({
    "http.route": "/v1/apps/:app_name",
    "http.response.status_code": 200,
    "fly.request_id": "r-9",
  });
});

it("marks 5xx answers as errors", async () => {
  await app.request("/v1/fail");
  expect(memory.spans()[0]?.status.code).toBe(SpanStatusCode.ERROR);
});
