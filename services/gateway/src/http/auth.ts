import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { ApiError } from "./errors.js";

const BEARER = /^Bearer\s+(\S+)\s*$/i;

// Comparing digests keeps the comparison constant-time even when the lengths differ.
const digest = (token: string): Buffer => createHash("sha256").update(token).digest();

/** Lets a request through only with `Authorization: Bearer <token>`; otherwise 401 `unauthenticated`. */
export function bearerAuth(token: string): MiddlewareHandler {
  if (token === "") throw new Error("bearerAuth needs a non-empty token");
  const expected = digest(token);
  return async (c, next) => {
    const header = c.req.header("authorization");
    const given = header === undefined ? undefined : BEARER.exec(header)?.[1];
    if (given === undefined || !timingSafeEqual(digest(given), expected)) {
      c.header("www-authenticate", 'Bearer realm="hangar"');
      throw ApiError.of(
        "unauthenticated",
        header === undefined ? "missing Authorization: Bearer <token> header" : "invalid bearer token",
      );
    }
    await next();
  };
}
