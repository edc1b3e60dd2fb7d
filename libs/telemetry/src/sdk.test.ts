import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, expect, it, vi } from "vitest";
import { startTelemetry } from "./sdk.js";
import { tracer } from "./tracer.js";

afterEach(() => {
  vi.unstubAllEnvs();
});

/** Ends one span so shutdown has something to flush. */
function recordSpan(): boolean {
  const span = tracer().startSpan("probe");
  span.end();
  return span.spanContext().traceFlags === 1;
}

it("starts and shuts down without an OTLP endpoint, still giving spans real ids", async () => {
  vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", "");
  vi.stubEnv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "");
  const telemetry = startTelemetry({ serviceName: "probe" });
  expect(recordSpan()).toBe(true);
  await telemetry.shutdown();
});

it("exports spans with service.name to the configured OTLP/HTTP endpoint", async () => {
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
    vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", `http://127.0.0.1:${port}`);
    const telemetry = startTelemetry({ serviceName: "probe", serviceVersion: "1.2.3" });
    recordSpan();
    await telemetry.shutdown();

    expect(bodies).toHaveLength(1);
    const attrs = JSON.parse(bodies[0] ?? "").resourceSpans[0].resource.attributes;
    expect(attrs).toEqual(
      expect.arrayContaining([
        { key: "service.name", value: { stringValue: "probe" } },
        { key: "service.version", value: { stringValue: "1.2.3" } },
      ]),
    );
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

it("shuts down within its bound when the OTLP endpoint is unreachable", async () => {
  vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", `http://127.0.0.1:${await freePort()}`);
  const telemetry = startTelemetry({ serviceName: "probe", shutdownTimeoutMs: 300 });
  recordSpan();
  const started = performance.now();
  await telemetry.shutdown();
  expect(performance.now() - started).toBeLessThan(2_000);
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
