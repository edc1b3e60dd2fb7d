import type { ExistingMachine } from "@hangar/domain";

/**
 * Whether the proxy may send a machine traffic: started, not cordoned, with a known port, and no check
 * whose last result is critical. The last rule is Fly's: a deploy's new machine that fails its checks
 * never serves while the previous release still does. Checks that have not run yet do not count.
 */
export function isRoutable(m: ExistingMachine): boolean {
  if (m.status !== "started" || m.cordoned || m.port <= 0) return false;
  for (const check of Object.values(m.checks)) if (check.status === "critical") return false;
  return true;
}
