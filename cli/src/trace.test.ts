import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, expect, it, vi } from "vitest";
import { startCommandTrace } from "./trace.js";

afterEach(() => {
  vi.unstubAllEnvs();
});

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

it("gives a command a trace id and a sampled traceparent without loading the SDK", async () => {
  const trace = await startCommandTrace("hangar deploy", {});
  expect(trace.traceId).toMatch(/^[0-9a-f]{32}$/);
  const [, traceId] = TRACEPARENT.exec(trace.traceparent()) ?? [];
  expect(traceId).toBe(trace.traceId);
  expect(await trace.phase("build", async () => 7)).toBe(7);
  await trace.end();
  // Another command, another trace.
  expect((await startCommandTrace("hangar deploy", {})).traceId).not.toBe(trace.traceId);
});

it("exports the root span and its phases to the configured endpoint, the phase's traceparent in between", async () => {
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      if (req.url === "/v1/traces") bodies.push(body);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = server.address() as AddressInfo;
    // The exporter reads the endpoint from the process's environment itself.
    vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", `http://127.0.0.1:${port}`);
    const trace = await startCommandTrace("hangar deploy");
    const rootParent = trace.traceparent();
    const inPhase = await trace.phase("build", async () => trace.traceparent());
    expect(trace.traceparent()).toBe(rootParent);
    await trace.end(new Error("release failed"));

    const spans = bodies.flatMap((b) =>
      JSON.parse(b).resourceSpans.flatMap((r: { scopeSpans: { spans: unknown[] }[] }) =>
        r.scopeSpans.flatMap((s) => s.spans),
      ),
    ) as { name: string; traceId: string; spanId: string; parentSpanId?: string; status: { code: number } }[];
    const root = spans.find((s) => s.name === "hangar deploy");
    const build = spans.find((s) => s.name === "build");
    expect(root?.traceId).toBe(trace.traceId);
    expect(root?.parentSpanId ?? "").toBe("");
    expect(root?.status.code).toBe(2);
    expect(build?.parentSpanId).toBe(root?.spanId);
    expect(TRACEPARENT.exec(rootParent)?.[2]).toBe(root?.spanId);
    expect(TRACEPARENT.exec(inPhase)?.[2]).toBe(build?.spanId);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
