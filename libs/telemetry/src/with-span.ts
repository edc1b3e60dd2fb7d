import { type Context, context, type Span, type SpanOptions, SpanStatusCode } from "@opentelemetry/api";
import { tracer } from "./tracer.js";

/**
 * Runs `work` in a new active span (child of `parent`, default the active context) and ends it when
 * `work` settles; a throw marks the span failed with the error's message and is rethrown.
 */
export function withSpan<T>(
  name: string,
  options: SpanOptions,
  work: (span: Span) => Promise<T>,
  parent: Context = context.active(),
): Promise<T> {
  return tracer().startActiveSpan(name, options, parent, async (span) => {
    try {
      return await work(span);
    } catch (err) {
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: err instanceof Error ? err.message : String(err),
      });
      throw err;
    } finally {
      span.end();
    }
  });
}
