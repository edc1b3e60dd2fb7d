import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { Histogram, type Registry } from "prom-client";

const NAME = "hangar_gateway_http_request_duration_seconds";

/** Records each request's duration in `hangar_gateway_http_request_duration_seconds{method,route,status}`. */
export function httpMetrics(registry: Registry): MiddlewareHandler {
  // A registry shared by several apps (tests, restarts in-process) keeps the one histogram.
  const histogram =
    (registry.getSingleMetric(NAME) as Histogram<"method" | "route" | "status"> | undefined) ??
    new Histogram({
      name: NAME,
      help: "Machines API request duration in seconds, by method, route pattern and status.",
      labelNames: ["method", "route", "status"],
      // Up to 60 s: `wait` holds a request that long.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    });
  return async (c, next) => {
    const start = performance.now();
    await next();
    // The route pattern, not the path, keeps the label's values few.
    histogram.observe(
      { method: c.req.method, route: routePath(c, -1), status: c.res.status },
      (performance.now() - start) / 1000,
    );
  };
}
