// A trace per proxied request: the proxy's server span (child of the client's traceparent), the
// wake-up of a sleeping machine under it, and the upstream call, whose traceparent the machine gets.
// An edge app's request gets a server span of its own too (its code here is a plain function).
import type { AddressInfo } from "node:net";
import { EdgeError } from "@hangar/edge";
import { createLogger, SpanKind, SpanStatusCode, trace } from "@hangar/telemetry";
import { type InMemoryTracing, startInMemoryTracing } from "@hangar/telemetry/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createProxy, type EdgeProxy } from "../src/engine/mod.js";
import { refusingBackend, send, startUpstream, stopUpstreams, TestRoutes } from "./harness.js";

const routes = new TestRoutes();
let tracing: InMemoryTracing;
let proxy: EdgeProxy;
let port: number;
/** The span active when the proxy asked the waker to start a machine. */
let wakeParent: string | undefined;

beforeAll(async () => {
  tracing = startInMemoryTracing();
  proxy = createProxy({
    routes,
    logger: createLogger("proxy-tracing-test", { level: "silent" }),
    waker: {
      async start(app) {
        wakeParent = trace.getActiveSpan()?.spanContext().spanId;
        // The machine "starts": the table then routes to it.
        const up = await startUpstream(`${app}-woken`);
        routes.set(app, [up.backend]);
      },
    },
    edge: {
      has: (app) => app.startsWith("edge-"),
      async dispatch(app) {
        if (app === "edge-loop") throw new EdgeError("cpu_limit", "a request used more than 50 ms of CPU");
        return {
          status: 201,
          statusText: "",
          headers: [["content-type", "text/plain"]],
          body: Buffer.from("hi"),
        };
      },
    },
  });
  await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
  port = (proxy.server.address() as AddressInfo).port;
});

afterAll(async () => {
  await proxy?.close();
  await stopUpstreams();
  await tracing?.shutdown();
});

const CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN = "b7ad6b7169203331";

function traceparentParts(value: unknown): { traceId: string; spanId: string } {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(value));
  if (!m) throw new Error(`not a traceparent: ${value}`);
  return { traceId: m[1] as string, spanId: m[2] as string };
}

it("continues the client's trace and hands the machine the upstream span as its parent", async () => {
  const up = await startUpstream("traced-1");
  routes.set("traced", [up.backend]);
  const answer = await send(port, `traced.localhost:${port}`, {
    headers: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` },
  });
  expect(answer.status).toBe(200);
  const got = traceparentParts((answer.json().headers as Record<string, string>).traceparent);

  const server = tracing
    .spans()
    .find((s) => s.name === "proxy GET" && s.attributes["hangar.app"] === "traced");
  const upstream = tracing
    .spans()
    .find((s) => s.name === "upstream" && s.attributes["hangar.machine_id"] === "traced-1");
  expect(server?.kind).toBe(SpanKind.SERVER);
  expect(server?.spanContext().traceId).toBe(CLIENT_TRACE);
  expect(server?.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
  expect(server?.attributes["http.response.status_code"]).toBe(200);
  expect(upstream?.kind).toBe(SpanKind.CLIENT);
  expect(upstream?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
  // The machine sees the proxy's upstream span, not the client's: one header, not two.
  expect(got).toEqual({ traceId: CLIENT_TRACE, spanId: upstream?.spanContext().spanId });
});

it("starts a trace of its own for a request without traceparent, and marks a 502 failed", async () => {
  // A POST with a body is neither retried nor held for the machine to listen: 502 at once.
  routes.set("unreachable", [await refusingBackend("gone-1")]);
  const answer = await send(port, `unreachable.localhost:${port}`, {
    method: "POST",
    body: Buffer.from("x"),
  });
  expect(answer.status).toBe(502);
  const server = tracing
    .spans()
    .find((s) => s.attributes["hangar.app"] === "unreachable" && s.kind === SpanKind.SERVER);
  expect(server?.parentSpanContext).toBeUndefined();
  expect(server?.status.code).toBe(SpanStatusCode.ERROR);
  const upstream = tracing.spans().find((s) => s.attributes["hangar.machine_id"] === "gone-1");
  expect(upstream?.status.code).toBe(SpanStatusCode.ERROR);
});

it("traces the wake-up of a sleeping machine under the request that needed it", async () => {
  routes.set("sleepy", [], { sleeping: [{ machineId: "m1", region: "local", status: "stopped" }] });
  const answer = await send(port, `sleepy.localhost:${port}`);
  expect(answer.status).toBe(200);
  const server = tracing
    .spans()
    .find((s) => s.attributes["hangar.app"] === "sleepy" && s.kind === SpanKind.SERVER);
  const wake = tracing.spans().find((s) => s.name === "machine wake");
  expect(wake?.attributes).toMatchObject({ "hangar.app": "sleepy", "hangar.machine_id": "m1" });
  expect(wake?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
  expect(wakeParent).toBe(wake?.spanContext().spanId);
  const upstream = tracing.spans().find((s) => s.attributes["hangar.machine_id"] === "sleepy-woken");
  expect(upstream?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
});

it("gives an edge app's request a server span, child of the client's, with its status or why its code failed", async () => {
  const ok = await send(port, `edge-ok.localhost:${port}`, {
    headers: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` },
  });
  expect(ok.status).toBe(201);
  const failed = await send(port, `edge-loop.localhost:${port}`);
  expect(failed.status).toBe(503);
  const spanOf = (app: string) =>
    tracing.spans().find((s) => s.attributes["hangar.app"] === app && s.kind === SpanKind.SERVER);
  const served = spanOf("edge-ok");
  expect(served?.name).toBe("edge GET");
  expect(served?.spanContext().traceId).toBe(CLIENT_TRACE);
  expect(served?.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
  expect(served?.attributes).toMatchObject({ "hangar.edge": true, "http.response.status_code": 201 });
  expect(served?.status.code).not.toBe(SpanStatusCode.ERROR);
  const stopped = spanOf("edge-loop");
  expect(stopped?.parentSpanContext).toBeUndefined();
  expect(stopped?.attributes).toMatchObject({
    "hangar.edge.error": "cpu_limit",
    "http.response.status_code": 503,
  });
  expect(stopped?.status.code).toBe(SpanStatusCode.ERROR);
});
