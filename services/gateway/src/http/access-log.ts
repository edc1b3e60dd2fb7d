import type { Logger } from "@hangar/telemetry";
import type { MiddlewareHandler } from "hono";
import type { ApiEnv } from "./context.js";

/** Logs each request at debug: id, method, path, status and milliseconds taken. Free when debug is off. */
export function accessLog(logger: Logger): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    if (!logger.isLevelEnabled("debug")) return next();
    const start = performance.now();
    await next();
    logger.debug(
      {
        request_id: c.get("requestId"),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        duration_ms: Math.round((performance.now() - start) * 1000) / 1000,
      },
      "request",
    );
  };
}
