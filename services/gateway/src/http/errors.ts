import { DomainError, type DomainErrorCode, EventStoreError } from "@hangar/eventstore";
import { CommandError } from "@hangar/service";

/**
 * Error codes of the API (the `status` field of an error body) and the HTTP status each one is sent
 * with: the one place where a code becomes a status. The codes follow the gRPC-style words Fly's API
 * uses in its messages. Notable choices, matching Fly:
 * - `invalid_argument` 400: Fly's spec answers every malformed request with 400, body fields
 *   included (the releases API follows it, where it used to send 422).
 * - `aborted` 409: the machine is leased and the request has no or another lease nonce (Fly answers
 *   "aborted: ... lease currently held by ..." with 409, and flyctl retries lease acquisition on 409).
 * - `failed_precondition` 412: the machine (or a build, a release) is in the wrong state, or
 *   `current_version` does not match. Fly sends 412 for a machine in the wrong state; one status for
 *   the code everywhere, so a release ended twice is a 412 too (it was a 409).
 * - `deadline_exceeded` 408: `wait` timed out (Fly answers 408 and clients loop on it).
 * - `insufficient_capacity` 422: no host can take the machine; the spec's error enum lists this code
 *   and Fly sends it with 422 (fly-go reads it to suggest another region).
 * - `name_taken` 409: an app name is in use (the code fly-go looks for); `already_exists` for other names.
 * - `conflict` 409: another holds it (a volume attached to another machine).
 * - `permission_denied` 403: the token's own org, but a caveat (apps, read-only, exec-only) denies;
 *   another org's resources are `not_found`, as if they did not exist.
 * - `resource_exhausted` 413 and `unsupported_media_type` 415: a build context too large, or not a tar.
 * - `idempotency_key_reused` 422: an Idempotency-Key sent again with a different request (as Stripe
 *   and the IETF idempotency-key draft answer it); a key whose first request still runs is `conflict`.
 * - `edge_bundle_not_found` 422: a release names an edge bundle the app has not uploaded (the request
 *   is well formed; what it points to is missing, as with a registry's unknown blob).
 * - `rate_limited` 429: the org spent its budget for the action (http/rate-limit.ts); the answer's
 *   Retry-After says in whole seconds when one more call fits, and clients such as flyctl retry then.
 * - `unknown` 500: anything unexpected (the spec's other error enum value).
 */
export const ERROR_STATUS = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  deadline_exceeded: 408,
  aborted: 409,
  already_exists: 409,
  name_taken: 409,
  conflict: 409,
  failed_precondition: 412,
  resource_exhausted: 413,
  unsupported_media_type: 415,
  insufficient_capacity: 422,
  idempotency_key_reused: 422,
  edge_bundle_not_found: 422,
  rate_limited: 429,
  unknown: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * How each platform code (DomainError, CommandError) reads in Fly's API. A held lease is Fly's
 * `aborted`; a service that does not answer, in time or at all, is `unavailable`; a service that
 * failed is `unknown`, a 500 like any unexpected error.
 */
export const API_CODE_OF: Record<DomainErrorCode, ErrorCode> = {
  invalid_argument: "invalid_argument",
  not_found: "not_found",
  already_exists: "already_exists",
  failed_precondition: "failed_precondition",
  conflict: "conflict",
  lease_held: "aborted",
  insufficient_capacity: "insufficient_capacity",
  unavailable: "unavailable",
  timeout: "unavailable",
  internal: "unknown",
};

/** Fly's error body. */
export interface ErrorBody {
  error: string;
  status: string;
}

/** The one error type of the API: the HTTP layer sends it as Fly's error body, with its code's status. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.status = ERROR_STATUS[code];
  }

  /** An ApiError with the HTTP status `ERROR_STATUS` gives `code`. */
  static of(code: ErrorCode, message: string, options?: ErrorOptions): ApiError {
    return new ApiError(code, message, options);
  }

  /** The body sent to the client. */
  toJSON(): ErrorBody {
    return { error: this.message, status: this.code };
  }
}

/**
 * What an error is sent as: an ApiError as it is; a DomainError or CommandError by its platform code
 * (API_CODE_OF), with its message unless the code is `internal`; anything else undefined, for the
 * caller to hide behind a generic 500.
 */
export function toApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  // A message larger than nats-server's max_payload (the client refuses it before sending): the
  // request was too large to record, whatever stage found it, so the client's fault, not a 500.
  if (exceedsMaxPayload(err)) {
    return new ApiError("resource_exhausted", "request too large to record; send less at once", {
      cause: err,
    });
  }
  // An event store error that says it may pass (a conflict that outlasted its retries, a lost
  // acknowledgement): the client may ask again, which is a 503, not a 500.
  if (err instanceof EventStoreError && err.retryable) {
    return new ApiError("unavailable", `${err.message}; try again`, { cause: err });
  }
  // NATS not answering (a node lost, a stream electing its leader, the connection moving to another
  // node): nothing the client did, and a retry may pass, so a 503 and not a 500.
  if (messagingUnavailable(err)) {
    return new ApiError("unavailable", "the platform's messaging did not answer in time; try again", {
      cause: err,
    });
  }
  if (!(err instanceof DomainError) && !(err instanceof CommandError)) return undefined;
  const code = API_CODE_OF[err.code];
  // A failing service's message may say more than a client should read.
  const message = err.code === "internal" ? "internal error" : err.message;
  return new ApiError(code, message, { cause: err });
}

/** The NATS client's errors for a request nobody answered or a connection that went away (nats-core's names). */
const MESSAGING_UNAVAILABLE = new Set([
  "TimeoutError",
  "NoResponders",
  "RequestError",
  "ClosedConnectionError",
  "DrainingConnectionError",
  "ConnectionError",
]);

/**
 * Whether `err`, or an error it wraps, says NATS did not answer: a transport error above, or a
 * JetStream API error with status 503 (no leader for the stream right now, the cluster electing).
 */
export function messagingUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (MESSAGING_UNAVAILABLE.has(e.name)) return true;
    if (e.name === "JetStreamApiError" && (e as Error & { status?: unknown }).status === 503) return true;
  }
  return false;
}

/** Whether `err`, or an error it wraps, is the NATS client's refusal of a message over max_payload. */
function exceedsMaxPayload(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e.message.includes("max_payload size exceeded")) return true;
  }
  return false;
}
