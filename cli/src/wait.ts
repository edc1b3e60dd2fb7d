import { setTimeout as sleep } from "node:timers/promises";
import { type ApiClient, ApiError } from "./api.js";
import type { MachineEvent, WaitState } from "./types.js";

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

/** The restart requests among a machine's events (MachineRestartRequested reads as restart/stopping). */
function restartRequests(events: MachineEvent[]): MachineEvent[] {
  return events.filter((e) => e.type === "restart" && e.status === "stopping");
}

/** What a machine's events say of the restart `request`: started again, failed (with why), or neither yet. */
export function restartOutcome(
  events: MachineEvent[],
  request: MachineEvent,
): "started" | string | undefined {
  const after = events
    .filter((e) => (e.timestamp ?? 0) >= (request.timestamp ?? 0) && e.id !== request.id)
    .sort((a, b) => (a.timestamp ?? 0) - (b.timestamp ?? 0));
  for (const e of after) {
    if (e.type === "start" && e.status === "started") return "started";
    if (e.type === "launch" && e.status === "failed") {
      const why = (e.request as { error?: unknown } | undefined)?.error;
      return typeof why === "string" ? why : "it failed to start";
    }
  }
  return undefined;
}

/**
 * Restarts a machine and waits until it has started again: the restart's own request in its events
 * (one not there before), then a start after it. A machine still "started" only because the restart
 * has not reached it yet is not mistaken for one that restarted.
 */
export async function restartAndWait(
  api: Pick<ApiClient, "machineEvents" | "restartMachine">,
  app: string,
  id: string,
  timeoutSeconds: number,
  pollMs = 250,
): Promise<void> {
  const earlier = new Set(restartRequests(await api.machineEvents(app, id)).map((e) => e.id));
  await api.restartMachine(app, id);
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const events = await api.machineEvents(app, id);
    const request = restartRequests(events).find((e) => !earlier.has(e.id));
    const outcome = request ? restartOutcome(events, request) : undefined;
    if (outcome === "started") return;
    if (outcome !== undefined) throw new Error(`machine ${id} did not start again: ${outcome}`);
    if (Date.now() >= deadline) {
      throw new WaitTimeoutError(`machine ${id} did not start again within ${timeoutSeconds}s`);
    }
    await sleep(pollMs);
  }
}
