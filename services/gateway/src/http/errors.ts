/**
 * Error codes of the API (the `status` field of an error body) and the HTTP status each one is sent with.
 * The codes follow the gRPC-style words Fly's API uses in its messages. Notable choices, matching Fly:
 * - `aborted` 409: the machine is leased and the request has no or another lease nonce (Fly answers
 *   "aborted: ... lease currently held by ..." with 409, and flyctl retries lease acquisition on 409).
 * - `failed_precondition` 412: the machine is in the wrong state, or `current_version` does not match.
 * - `deadline_exceeded` 408: `wait` timed out (Fly answers 408 and clients loop on it).
 * - `insufficient_capacity` 422: no host can take the machine; the spec's error enum lists this code
 *   and Fly sends it with 422 (fly-go reads it to suggest another region).
 * - `name_taken` 409: an app name is in use (the code fly-go looks for); `already_exists` for other names.
 * - `unknown` 500: anything unexpected (the spec's other error enum value).
 */
export const ERROR_STATUS = {
  invalid_argument: 400,
  unauthenticated: 401,
  not_found: 404,
  deadline_exceeded: 408,
  aborted: 409,
  already_exists: 409,
  name_taken: 409,
  failed_precondition: 412,
  insufficient_capacity: 422,
  unknown: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** Fly's error body. */
export interface ErrorBody {
  error: string;
  status: string;
}

/** The one error type of the API: the backend throws it and the HTTP layer sends it as Fly's error body. */
export class ApiError extends Error {
  override readonly name = "ApiError";

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** An ApiError with the HTTP status `ERROR_STATUS` gives `code`. */
  static of(code: ErrorCode, message: string, options?: ErrorOptions): ApiError {
    return new ApiError(ERROR_STATUS[code], code, message, options);
  }

  /** The body sent to the client. */
  toJSON(): ErrorBody {
    return { error: this.message, status: this.code };
  }
}
