import { extractTraceContext, SpanKind, SpanStatusCode, tracer } from "@hangar/telemetry";
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { ApiEnv } from "./context.js";

/**
 * Runs each request in a server span, child of the client's `traceparent` if any, so that the backend's
 * NATS requests carry the trace onward. A no-op tracer (no SDK started) makes this nearly free.
 */
export function tracing(): MiddlewareHandler<ApiEnv> {
  return (c, next) => {
    const parent = extractTraceContext({ get: (name) => c.req.header(name) ?? "", set: () => {} });
    return tracer().startActiveSpan(
      c.req.method,
      { kind: SpanKind.SERVER, attributes: { "http.request.method": c.req.method, "url.path": c.req.path } },
      parent,
      async (span) => {
        try {
          await next();
          const route = routePath(c, -1);
          span.updateName(`${c.req.method} ${route}`);
          span.setAttributes({
            "http.route": route,
            "http.response.status_code": c.res.status,
            "fly.request_id": c.get("requestId"),
          });
          if (c.res.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        } finally {
          span.end();
        }
      },
    );
  };
}
