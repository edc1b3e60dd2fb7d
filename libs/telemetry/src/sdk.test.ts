import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
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

/** An OTLP/HTTP endpoint that keeps the JSON bodies it gets, by path. */
async function receiver() {
  const bodies: { path: string; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      bodies.push({ path: req.url ?? "", body });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bodies: (path: string) => bodies.filter((b) => b.path === path).map((b) => b.body),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

it("exports spans with service.name to the configured OTLP/HTTP endpoint", async () => {
  const otlp = await receiver();
  try {
    vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.url);
    const telemetry = startTelemetry({ serviceName: "probe", serviceVersion: "1.2.3" });
    recordSpan();
    await telemetry.shutdown();

    const bodies = otlp.bodies("/v1/traces");
    expect(bodies).toHaveLength(1);
    const attrs = JSON.parse(bodies[0] ?? "").resourceSpans[0].resource.attributes;
    expect(attrs).toEqual(
      expect.arrayContaining([
        { key: "service.name", value: { stringValue: "probe" } },
        { key: "service.version", value: { stringValue: "1.2.3" } },
      ]),
    );
  } finally {
    await otlp.close();
  }
});

it("exports the service's prom-client metrics over OTLP: counters, gauges and histograms", async () => {
  const registry = new Registry();
  registry.setDefaultLabels({ service: "probe" });
  const requests = new Counter({
    name: "probe_requests_total",
    help: "r",
    labelNames: ["app"],
    registers: [registry],
  });
  const queued = new Gauge({ name: "probe_queued", help: "q", registers: [registry] });
  const latency = new Histogram({
    name: "probe_seconds",
    help: "l",
    buckets: [0.1, 1],
    registers: [registry],
  });
  requests.inc({ app: "a" }, 3);
  queued.set(7);
  for (const v of [0.05, 0.5, 0.7, 5]) latency.observe(v);
  const otlp = await receiver();
  try {
    vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.url);
    vi.stubEnv("OTEL_METRIC_EXPORT_INTERVAL", "100");
    const telemetry = startTelemetry({ serviceName: "probe", metrics: registry });
    await vi.waitFor(() => expect(otlp.bodies("/v1/metrics").length).toBeGreaterThan(0), { timeout: 5_000 });
    await telemetry.shutdown();

    const body = JSON.parse(otlp.bodies("/v1/metrics")[0] ?? "");
    const [resource] = body.resourceMetrics;
    expect(resource.resource.attributes).toContainEqual({
      key: "service.name",
      value: { stringValue: "probe" },
    });
    const metrics = new Map<
      string,
      Record<string, { dataPoints: Record<string, unknown>[]; isMonotonic?: boolean }>
    >(
      resource.scopeMetrics.flatMap((s: { metrics: { name: string }[] }) =>
        s.metrics.map((m) => [m.name, m]),
      ),
    );
    const sum = metrics.get("probe_requests_total")?.sum;
    expect(sum?.isMonotonic).toBe(true);
    expect(sum?.dataPoints[0]).toMatchObject({ asDouble: 3 });
    expect(sum?.dataPoints[0]?.attributes).toEqual(
      expect.arrayContaining([
        { key: "app", value: { stringValue: "a" } },
        { key: "service", value: { stringValue: "probe" } },
      ]),
    );
    expect(metrics.get("probe_queued")?.gauge?.dataPoints[0]).toMatchObject({ asDouble: 7 });
    const histogram = metrics.get("probe_seconds")?.histogram?.dataPoints[0];
    // Per bucket, not cumulative as Prometheus counts: (..0.1] 1, (0.1..1] 2, (1..) 1.
    expect(histogram?.explicitBounds).toEqual([0.1, 1]);
    expect(((histogram?.bucketCounts ?? []) as unknown[]).map(Number)).toEqual([1, 2, 1]);
    expect(Number(histogram?.count)).toBe(4);
    expect(histogram?.sum).toBeCloseTo(6.25);
  } finally {
    await otlp.close();
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
