import type { SleepingMachine } from "./route-table.js";

/** What starts a sleeping machine for the proxy (autostart); the real one appends to the MACHINES stream. */
export interface Waker {
  /**
   * Asks for `machine` of `app` to start (and be routable again). Resolves once the start is
   * recorded, or found already asked for; rejects when it is refused (e.g. the machine is leased).
   */
  start(app: string, machine: SleepingMachine): Promise<void>;
}

/**
 * The order in which to try sleeping machines: suspended before stopped (they resume faster), then
 * those of `region` (the proxy's), then by machine id. Every proxy picks the same machine first.
 */
export function wakeOrder(
  sleeping: readonly SleepingMachine[],
  region: string | undefined,
): SleepingMachine[] {
  return [...sleeping].sort(
    (a, b) =>
      rank(a.status === "suspended") - rank(b.status === "suspended") ||
      rank(a.region === region) - rank(b.region === region) ||
      (a.machineId < b.machineId ? -1 : a.machineId > b.machineId ? 1 : 0),
  );
}

function rank(preferred: boolean): number {
  return preferred ? 0 : 1;
}

/** The platform refused to start a machine (e.g. it is leased, or no longer stopped): try another. */
export class WakeRefusedError extends Error {
  override name = "WakeRefusedError";
  constructor(
    /** The refusal's code, e.g. `failed_precondition` or `lease_held`. */
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
