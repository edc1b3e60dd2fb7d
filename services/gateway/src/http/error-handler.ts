import type { Logger } from "@hangar/telemetry";
import type { Context, ErrorHandler } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ApiEnv } from "./context.js";
import { type ErrorBody, toApiError } from "./errors.js";

const INTERNAL: ErrorBody = { error: "internal error", status: "unknown" };

/**
 * Sends ApiErrors, DomainErrors and CommandErrors as Fly's error body with their code's status (the
 * one mapping in errors.ts), and anything else as a logged, generic 500.
 */
export function errorHandler(logger: Logger): ErrorHandler<ApiEnv> {
  return (err, c) => {
    const api = toApiError(err);
    if (api) {
      if (api.status >= 500) logger.error({ ...where(c), code: api.code, err }, api.message);
      return c.json(api.toJSON(), api.status as ContentfulStatusCode);
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
