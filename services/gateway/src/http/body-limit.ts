import type { Context, MiddlewareHandler } from "hono";
import type { ApiEnv } from "./context.js";
import { ApiError } from "./errors.js";

/** The largest JSON body the API reads: 1 MiB. */
export const MAX_JSON_BODY_BYTES = 2 ** 20;

// After a streamed body passed the limit, this much more is read and dropped, so that a client still
// sending reads the 413 rather than a broken pipe; beyond it the connection is cut.
const DRAIN_BYTES = 16 * 2 ** 20;

// Build contexts are tars streamed to the object store, and edge bundles are read, under their own
// limits (the builds and edge bundles routes).
const STREAMED_BODY = /^\/v1\/apps\/[^/]+\/(?:builds|edge\/bundles)\/?$/;

/**
 * The 413. It closes the connection: the rest of the body may still be on its way, and a client must
 * not send its next request on a connection the server stops reading (RFC 9112, section 9.6).
 */
function tooLarge(c: Context<ApiEnv>, maxBytes: number): ApiError {
  c.header("connection", "close");
  return ApiError.of(
    "resource_exhausted",
    `request body is larger than the API's limit of ${maxBytes} bytes`,
  );
}

/**
 * Refuses a request body over `maxBytes` with 413 `resource_exhausted`: at once from its
 * Content-Length, or, for a body sent without one, as soon as it passes the limit, never holding
 * more than the limit in memory. Build context uploads are left to their own limit.
 *
 * Hono's bodyLimit does the same but leaves a streamed body half-read, and the node server then
 * drops the connection under a client that is still sending, which sees an error instead of a 413.
 */
export function jsonBodyLimit(maxBytes = MAX_JSON_BODY_BYTES): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const body = c.req.raw.body;
    if (body === null || (c.req.method === "POST" && STREAMED_BODY.test(c.req.path))) return next();
    const declared = c.req.header("content-length");
    if (declared !== undefined && c.req.header("transfer-encoding") === undefined) {
      // The server reads exactly the declared length, so the header is the body's size.
      if (Number(declared) > maxBytes) throw tooLarge(c, maxBytes);
      return next();
    }
    c.req.raw = new Request(c.req.raw, { body: await readWithin(c, body, maxBytes) });
    return next();
  };
}

/**
 * The whole request body, refused with 413 `resource_exhausted` once it passes `maxBytes` (at once
 * from its Content-Length), never holding more than the limit in memory; empty when there is none.
 */
export async function readBodyWithin(c: Context<ApiEnv>, maxBytes: number): Promise<Buffer> {
  const declared = c.req.header("content-length");
  if (
    declared !== undefined &&
    c.req.header("transfer-encoding") === undefined &&
    Number(declared) > maxBytes
  )
    throw tooLarge(c, maxBytes);
  const body = c.req.raw.body;
  return body === null ? Buffer.alloc(0) : readWithin(c, body, maxBytes);
}

async function readWithin(
  c: Context<ApiEnv>,
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
): Promise<Buffer> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await drain(reader);
      throw tooLarge(c, maxBytes);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  let dropped = 0;
  while (dropped <= DRAIN_BYTES) {
    const { done, value } = await reader.read();
    if (done) return;
    dropped += value.byteLength;
  }
  await reader.cancel().catch(() => {});
}
