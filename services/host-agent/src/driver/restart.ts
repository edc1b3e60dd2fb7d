import type { ExitInfo } from "./types.js";

/** A machine's restart policy, as in Fly's MachineRestart. */
export interface RestartPolicy {
  /** Fly's default when unset: on-failure. */
  policy?: "no" | "always" | "on-failure";
  /** For on-failure: how many restarts are allowed. */
  max_retries?: number;
}

/** flyd's limit for on-failure when max_retries is not set (the API schema gives no default). */
export const DEFAULT_MAX_RETRIES = 10;

/**
 * Whether a machine whose process exited is started again (Fly's semantics): a requested stop never,
 * "always" after any other exit, "on-failure" after a failed exit (non-zero, a signal, or unknown) while
 * fewer than max_retries restarts were made.
 */
export function restartDecision(
  policy: RestartPolicy | undefined,
  exit: Pick<ExitInfo, "exitCode" | "signal">,
  restartsSoFar: number,
  requested: boolean,
): boolean {
  if (requested) return false;
  const kind = policy?.policy ?? "on-failure";
  if (kind === "no") return false;
  if (kind === "always") return true;
  const failed = exit.exitCode !== 0 || exit.signal !== undefined;
  return failed && restartsSoFar < (policy?.max_retries ?? DEFAULT_MAX_RETRIES);
}
