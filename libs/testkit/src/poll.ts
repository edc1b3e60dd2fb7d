import { setTimeout as sleep } from "node:timers/promises";
import { TimeoutError } from "./errors.js";

export interface PollOptions {
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  signal?: AbortSignal;
}

/** Calls `probe` until it returns something other than undefined; rejects on timeout or abort. */
export async function poll<T>(probe: () => Promise<T | undefined>, opts: PollOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    opts.signal?.throwIfAborted();
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new TimeoutError(opts.what, opts.timeoutMs);
    await sleep(opts.intervalMs ?? 25);
  }
}
