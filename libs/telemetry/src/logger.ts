import { isSpanContextValid, trace } from "@opentelemetry/api";
import pino from "pino";

export interface LoggerOptions {
  /** Defaults to LOG_LEVEL, then "info". */
  level?: string;
  /** Defaults to stdout. */
  destination?: pino.DestinationStream;
}

/** A JSON logger tagged with `service: name` whose lines carry trace_id/span_id of the active span. */
export function createLogger(name: string, opts: LoggerOptions = {}): pino.Logger {
  return pino(
    {
      level: opts.level ?? (process.env.LOG_LEVEL || "info"),
      base: { service: name },
      mixin: activeSpanIds,
    },
    opts.destination,
  );
}

function activeSpanIds(): { trace_id?: string; span_id?: string } {
  const span = trace.getActiveSpan()?.spanContext();
  // Non-recording placeholders carry all-zero ids that would correlate unrelated lines.
  return span && isSpanContextValid(span) ? { trace_id: span.traceId, span_id: span.spanId } : {};
}
