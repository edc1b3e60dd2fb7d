/** A budget: `count` calls per `periodMs`, refilled continuously, bursting up to `count`. */
export interface Limit {
  count: number;
  periodMs: number;
}

/** A bucket as stored: its tokens at time `at` (ms since epoch). Tokens may be negative (debt, see `charge`). */
export interface BucketState {
  tokens: number;
  at: number;
}

/** What `admit` decided: go ahead, or wait `retryAfterMs` before one more call fits. */
export type Admission = { ok: true } | { ok: false; retryAfterMs: number };

const refillPerMs = (limit: Limit): number => limit.count / limit.periodMs;

/** The bucket's tokens at `now`: a missing bucket is full, and refill never exceeds the limit's count. */
export function tokensAt(state: BucketState | undefined, limit: Limit, now: number): number {
  if (state === undefined) return limit.count;
  const elapsed = Math.max(0, now - state.at);
  return Math.min(limit.count, state.tokens + elapsed * refillPerMs(limit));
}

/**
 * Whether one more call fits at `now` beside `inFlight` admitted calls not yet charged. When it does
 * not, `retryAfterMs` is when the bucket will have refilled enough for it.
 */
export function admit(state: BucketState | undefined, limit: Limit, now: number, inFlight = 0): Admission {
  const missing = 1 + inFlight - tokensAt(state, limit, now);
  if (missing <= 0) return { ok: true };
  return { ok: false, retryAfterMs: Math.ceil(missing / refillPerMs(limit)) };
}

/**
 * The bucket after one call is charged at `now`. It may go below zero: calls admitted at the same
 * moment by other gateway replicas are all charged, and the debt delays later calls, so the rate
 * over time stays the limit's.
 */
export function charge(state: BucketState | undefined, limit: Limit, now: number): BucketState {
  return { tokens: tokensAt(state, limit, now) - 1, at: now };
}
