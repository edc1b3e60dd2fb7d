import { randomUUID } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import type { ApiEnv } from "./context.js";

/** Header carrying the request id, in both directions, as Fly names it. */
export const REQUEST_ID_HEADER = "fly-request-id";

// A client's id is kept only if it is short and plain, so it cannot forge log lines or bloat them.
const ACCEPTABLE = /^[A-Za-z0-9._:=-]{1,128}$/;

/** Takes the client's `fly-request-id` or makes one, stores it as `requestId` and echoes it on the response. */
export function requestId(): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const given = c.req.header(REQUEST_ID_HEADER);
    const id = given !== undefined && ACCEPTABLE.test(given) ? given : randomUUID();
    c.set("requestId", id);
    await next();
    c.header(REQUEST_ID_HEADER, id);
  };
}
