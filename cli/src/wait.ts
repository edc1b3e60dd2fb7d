import { setTimeout as sleep } from "node:timers/promises";
import { type ApiClient, ApiError } from "./api.js";
import type { WaitState } from "./types.js";

/** The longest single long poll; the Fly API caps the wait endpoint's timeout at 60 s. */
const MAX_POLL_SECONDS = 60;

/** The machine did not reach the state within the CLI's own deadline. */
export class WaitTimeoutError extends Error {
  override name = "WaitTimeoutError";
}

/**
 * Waits until a machine reaches `state`, polling the wait endpoint for up to `timeoutSeconds` in all.
 * A poll that ends with 408 (the server's own wait timed out) is followed by another one.
 */
export async function waitForState(
  api: ApiClient,
  app: string,
  id: string,
  state: WaitState,
  timeoutSeconds: number,
  instanceId?: string,
): Promise<void> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const left = Math.ceil((deadline - Date.now()) / 1000);
    if (left <= 0) {
      throw new WaitTimeoutError(`machine ${id} did not reach state ${state} within ${timeoutSeconds}s`);
    }
    const started = Date.now();
    try {
      await api.waitMachine(app, id, state, Math.min(left, MAX_POLL_SECONDS), instanceId);
      return;
    } catch (err) {
      if (!(err instanceof ApiError && err.httpStatus === 408)) throw err;
    }
    // A server that gives up at once instead of holding the request must not be hammered.
    if (Date.now() - started < 1000) await sleep(1000);
  }
}
