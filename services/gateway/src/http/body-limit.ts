import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ApiEnv } from "./context.js";
import { ApiError } from "./errors.js";

/** The largest JSON body the API reads: 1 MiB. */
export const MAX_JSON_BODY_BYTES = 2 ** 20;

// Build contexts are tars streamed to the object store under their own limit (the builds routes).
const STREAMED_BODY = /^\/v1\/apps\/[^/]+\/builds\/?$/;

/**
 * Refuses a request body over `maxBytes` with 413 `resource_exhausted`: at once from its
 * Content-Length, or, for a chunked body, as soon as it passes the limit, never holding more than the
 * limit in memory. Build context uploads are left to their own limit.
 */
export function jsonBodyLimit(maxBytes = MAX_JSON_BODY_BYTES): MiddlewareHandler<ApiEnv> {
  const limit = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw ApiError.of("resource_exhausted", `request body is larger than ${maxBytes} bytes`);
    },
  });
  return async (c, next) => {
    if (c.req.method === "POST" && STREAMED_BODY.test(c.req.path)) return next();
    return limit(c, next);
  };
}
