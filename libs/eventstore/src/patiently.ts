import { setTimeout as sleep } from "node:timers/promises";
import { JetStreamApiError } from "@nats-io/jetstream";

/** Set-up calls (a stream, a bucket) tried this many times when NATS does not answer. */
export const SETUP_ATTEMPTS = 10;
/** The wait before the next attempt, doubled after each failure up to SETUP_RETRY_MAX_MS. */
export const SETUP_RETRY_MS = 250;
export const SETUP_RETRY_MAX_MS = 4_000;

/**
 * Runs a JetStream set-up call (creating a stream, a KV bucket or an Object Store) again when it failed
 * for a reason that passes: no answer in time or no responders, as when every service of a platform
 * starts at once against a JetStream cluster that is still electing its leaders, or busy making
 * their replicated streams. A JetStream API error (a stream configured otherwise, no permission) is
 * an answer, and thrown at once. The calls it retries are idempotent: one that timed out but took
 * effect finds its stream or bucket on the next attempt.
 */
export async function patiently<T>(
  call: () => Promise<T>,
  opts: { attempts?: number; retryMs?: number; onError?: (err: unknown) => void } = {},
): Promise<T> {
  const attempts = opts.attempts ?? SETUP_ATTEMPTS;
  let wait = opts.retryMs ?? SETUP_RETRY_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= attempts || err instanceof JetStreamApiError) throw err;
      opts.onError?.(err);
      await sleep(wait);
      wait = Math.min(wait * 2, SETUP_RETRY_MAX_MS);
    }
  }
}
