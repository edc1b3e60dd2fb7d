import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import { type IMetricReader, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { BatchSpanProcessor, NoopSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import { type PromRegistryLike, promMetricProducer } from "./prom-bridge.js";

export interface TelemetryOptions {
  serviceName: string;
  serviceVersion?: string;
  /** Upper bound on `shutdown()`; spans not flushed by then are dropped. Default 5000. */
  shutdownTimeoutMs?: number;
  /**
   * The service's prom-client registry: with an OTLP endpoint, what it holds (what /metrics serves)
   * is exported over OTLP too, every OTEL_METRIC_EXPORT_INTERVAL ms (default 60000).
   */
  metrics?: PromRegistryLike;
}

export interface Telemetry {
  shutdown(): Promise<void>;
}

/** Installs the process-wide tracing SDK: W3C propagation, async context, OTLP/HTTP export when configured. */
export function startTelemetry(opts: TelemetryOptions): Telemetry {
  const sdk = new NodeSDK({
    // Passed separately from `resource` so it wins over OTEL_SERVICE_NAME found by resource detection.
    serviceName: opts.serviceName,
    resource: defaultResource().merge(
      resourceFromAttributes(opts.serviceVersion ? { [ATTR_SERVICE_VERSION]: opts.serviceVersion } : {}),
    ),
    contextManager: new AsyncLocalStorageContextManager(),
    textMapPropagator: new W3CTraceContextPropagator(),
    instrumentations: [],
    spanProcessors: [spanProcessor()],
    // Left unset, NodeSDK would start OTLP metric and log exporters aimed at localhost.
    metricReaders: metricReaders(opts.metrics),
    logRecordProcessors: [],
  });
  sdk.start();
  const timeoutMs = opts.shutdownTimeoutMs ?? 5_000;
  return {
    async shutdown() {
      try {
        // A dead collector makes the exporter retry for up to OTEL_EXPORTER_OTLP_TIMEOUT; exit must not wait on it.
        await withTimeout(sdk.shutdown(), timeoutMs);
      } finally {
        // NodeSDK leaves its globals registered, which would make a later start in this process a no-op.
        trace.disable();
        propagation.disable();
        context.disable();
      }
    },
  };
}

function spanProcessor(): SpanProcessor {
  const env = process.env;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
    // The exporter reads the endpoint, headers and timeout from the same OTEL_* variables itself.
    return new BatchSpanProcessor(new OTLPTraceExporter());
  }
  // Without a processor NodeSDK registers no tracer provider, and spans would get no ids to log or propagate.
  return new NoopSpanProcessor();
}

function metricReaders(registry: PromRegistryLike | undefined): IMetricReader[] {
  const env = process.env;
  if (!registry || !(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT)) return [];
  const intervalMs = Number(env.OTEL_METRIC_EXPORT_INTERVAL) || 60_000;
  return [
    new PeriodicExportingMetricReader({
      // Like the span exporter, it reads the endpoint, headers and timeout from the OTEL_* variables.
      exporter: new OTLPMetricExporter(),
      exportIntervalMillis: intervalMs,
      // The reader refuses a timeout longer than its interval.
      exportTimeoutMillis: Math.min(Number(env.OTEL_METRIC_EXPORT_TIMEOUT) || 30_000, intervalMs),
      metricProducers: [promMetricProducer(registry)],
    }),
  ];
}

function withTimeout(work: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    work.then(resolve, reject).finally(() => clearTimeout(timer));
  });
}
