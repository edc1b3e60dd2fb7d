/** How a request to a remote registry is retried: attempts in all, and the first delay. */
export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  /** No single wait is longer than this, whatever Retry-After says. */
  maxDelayMs: number;
}

/** Five attempts, waiting 0.5, 1, 2 and 4 s between them. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 500, maxDelayMs: 30_000 };

/** Whether an HTTP status is worth another try: 429 (too many requests) and 5xx; never another 4xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}

/**
 * The wait before retry number `retry` (0 for the first retry): exponential from the base delay, or
 * what a `Retry-After` header (seconds or an HTTP date) asks for, capped at the policy's maximum.
 */
export function retryDelayMs(
  retry: number,
  policy: RetryPolicy,
  retryAfter?: string | null,
  now: number = Date.now(),
): number {
  let wait = policy.baseDelayMs * 2 ** retry;
  if (retryAfter) {
    const seconds = Number(retryAfter);
    const asked = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - now;
    if (Number.isFinite(asked) && asked >= 0) wait = asked;
  }
  return Math.min(wait, policy.maxDelayMs);
}
