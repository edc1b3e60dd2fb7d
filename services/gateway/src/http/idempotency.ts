import type { Logger } from "@hangar/telemetry";
import type { MiddlewareHandler } from "hono";
import {
  IDEMPOTENCY_KEY_HEADER,
  IDEMPOTENT_REPLAYED_HEADER,
  isIdempotentRoute,
  isRecordedStatus,
  isValidIdempotencyKey,
  recordKeyOf,
  requestFingerprint,
} from "../idempotency/keys.js";
import type { Claim, IdempotencyStore, RecordedAnswer } from "../idempotency/kv-idempotency.js";
import type { ApiEnv } from "./context.js";
import { ApiError } from "./errors.js";

/**
 * Honours `Idempotency-Key` on the mutations of IDEMPOTENT_ROUTES, after the token middleware (keys
 * are the calling credential's own) and the rate limits (a keyed flood is refused before any KV write). The first
 * request with a key acts; the same key with the same request replays its answer (status and body,
 * with `Idempotent-Replayed: true`) on any gateway; with another request it is a 422; while the first
 * still runs, a second waits for it and then replays, or gets a 409 after the store's wait. Only
 * answers a retry would repeat are kept (keys.ts isRecordedStatus); otherwise the key is freed.
 */
export function idempotency(store: IdempotencyStore, logger: Logger): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const key = c.req.header(IDEMPOTENCY_KEY_HEADER);
    if (key === undefined || !isIdempotentRoute(c.req.method, c.req.path)) return next();
    if (!isValidIdempotencyKey(key))
      throw ApiError.of(
        "invalid_argument",
        "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces (a UUID, say)",
      );
    const principal = c.get("principal");
    const recordKey = recordKeyOf(
      { org: principal.org, tokenId: principal.tokenId, credential: c.req.header("authorization") ?? "" },
      key,
    );
    const url = new URL(c.req.url);
    const fingerprint = requestFingerprint(c.req.method, url.pathname + url.search, await c.req.text());
    let claim: Claim;
    try {
      claim = await store.claim(recordKey, fingerprint, c.req.raw.signal);
    } catch (err) {
      throw ApiError.of("unavailable", "idempotency keys cannot be checked right now; try again", {
        cause: err,
      });
    }
    if (claim.kind === "mismatch")
      throw ApiError.of(
        "idempotency_key_reused",
        `Idempotency-Key ${key} was used with a different request; send a new key with a new request`,
      );
    if (claim.kind === "busy")
      throw ApiError.of(
        "conflict",
        `a request with Idempotency-Key ${key} is still in progress; retry it in a few seconds`,
      );
    if (claim.kind === "replay") {
      // 204, 205 and 304 carry no body: a Response refuses one.
      const empty = [204, 205, 304].includes(claim.answer.status);
      return new Response(empty ? null : claim.answer.body, {
        status: claim.answer.status,
        headers: { "content-type": claim.answer.contentType, [IDEMPOTENT_REPLAYED_HEADER]: "true" },
      });
    }
    if (claim.takenOver)
      logger.info({ path: c.req.path }, "idempotency key taken over from a stopped attempt");
    c.set("operationId", claim.operationId);
    if (claim.resumed) c.set("operationResumed", true);
    let answer: RecordedAnswer | undefined;
    try {
      await next();
      const body = await c.res.clone().text();
      if (isRecordedStatus(c.res.status, errorCodeOf(body))) {
        answer = {
          status: c.res.status,
          body,
          contentType: c.res.headers.get("content-type") ?? "application/json",
        };
      }
    } finally {
      // Whatever happened, the key stops beating: recorded, or released for a retry to resume.
      await claim.finish(answer);
    }
  };
}

/** The `status` of a Fly-style error body, if the body is one. */
function errorCodeOf(body: string): string | undefined {
  try {
    const status = (JSON.parse(body) as { status?: unknown } | null)?.status;
    return typeof status === "string" ? status : undefined;
  } catch {
    return undefined;
  }
}
