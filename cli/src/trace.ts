import { randomBytes } from "node:crypto";

/** The trace of one CLI command: its id, and the W3C `traceparent` its API calls carry. */
export interface CommandTrace {
  readonly traceId: string;
  /** The current span's `traceparent` (the root's, or a phase's while one runs). */
  traceparent(): string;
  /** Runs `work` as a child span named `name` (only recorded when spans are exported). */
  phase<T>(name: string, work: () => Promise<T>): Promise<T>;
  /** Ends the root span (an error marks it failed) and flushes it when spans are exported. */
  end(error?: unknown): Promise<void>;
}

/** Whether the environment names an OTLP endpoint for traces (OTel's standard variables). */
export function exportsTraces(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

function traceparentOf(traceId: string, spanId: string): string {
  // Sampled (01): the services record and export their spans of the trace even when the CLI does not.
  return `00-${traceId}-${spanId}-01`;
}

/**
 * Starts the root span of a command. With an OTLP endpoint configured, the OpenTelemetry SDK is
 * loaded (only then: importing it is slow, seconds on a loaded machine) and the CLI's spans are exported; without
 * one, the command still gets a trace id of its own, which the services' spans share.
 */
export async function startCommandTrace(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<CommandTrace> {
  if (!exportsTraces(env)) {
    const traceId = randomBytes(16).toString("hex");
    const root = traceparentOf(traceId, randomBytes(8).toString("hex"));
    return { traceId, traceparent: () => root, phase: (_name, work) => work(), end: async () => undefined };
  }
  const { context, startTelemetry, trace, tracer, SpanKind, SpanStatusCode } = await import(
    "@hangar/telemetry"
  );
  const telemetry = startTelemetry({ serviceName: "hangar-cli", shutdownTimeoutMs: 3_000 });
  const root = tracer().startSpan(name, { kind: SpanKind.CLIENT });
  let current = root;
  const failed = (span: typeof root, error: unknown) =>
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
  return {
    traceId: root.spanContext().traceId,
    traceparent: () => traceparentOf(current.spanContext().traceId, current.spanContext().spanId),
    async phase(phaseName, work) {
      const parent = current;
      const span = tracer().startSpan(phaseName, {}, trace.setSpan(context.active(), parent));
      current = span;
      try {
        return await work();
      } catch (err) {
        failed(span, err);
        throw err;
      } finally {
        current = parent;
        span.end();
      }
    },
    async end(error) {
      if (error !== undefined) failed(root, error);
      root.end();
      await telemetry.shutdown();
    },
  };
}
