import { setTimeout as sleep } from "node:timers/promises";

/** The longest pause between two checks: callers wait on the kernel, which is usually done at once. */
const MAX_STEP_MS = 10;

/**
 * Resolves true once `done()` holds, false when `timeoutMs` passes first. Checks again at once, then
 * after 1, 2, 4, 8 and then every 10 ms: a short wait never sleeps much longer than it needs to.
 */
export async function pollUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let step = 0;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await (step === 0 ? new Promise((resolve) => setImmediate(resolve)) : sleep(step));
    step = Math.min(step === 0 ? 1 : step * 2, MAX_STEP_MS);
  }
  return true;
}
