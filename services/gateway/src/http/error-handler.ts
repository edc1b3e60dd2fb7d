import type { Logger } from "@hangar/telemetry";
import type { Context, ErrorHandler } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ApiEnv } from "./context.js";
import { ApiError, type ErrorBody } from "./errors.js";

const INTERNAL: ErrorBody = { error: "internal error", status: "unknown" };

/** Sends ApiErrors as Fly's error body with their status, and anything else as a logged, generic 500. */
export function errorHandler(logger: Logger): ErrorHandler<ApiEnv> {
  return (err, c) => {
    if (err instanceof ApiError) {
      const status = err.status >= 400 && err.status <= 599 ? err.status : 500;
      if (status >= 500) logger.error({ ...where(c), code: err.code, err }, err.message);
      return c.json(err.toJSON(), status as ContentfulStatusCode);
    }
    logger.error({ ...where(c), err }, "unhandled error");
    return c.json(INTERNAL, 500);
  };
}

/** Answers an unknown route with Fly's error body. */
export function notFound(c: Context<ApiEnv>): Response {
  const body: ErrorBody = { error: `no route for ${c.req.method} ${c.req.path}`, status: "not_found" };
  return c.json(body, 404);
}

function where(c: Context<ApiEnv>) {
  return { request_id: c.get("requestId"), method: c.req.method, path: c.req.path };
}
