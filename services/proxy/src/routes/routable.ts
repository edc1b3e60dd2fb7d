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

/**
 * Whether the machine has a service in its config. Fly's proxy sends traffic only to machines that
 * do, and wakes only those: a process group without [http_service] or [[services]] (a worker) gets
 * none, even when it listens on the port the app's other machines serve on.
 */
export function hasServices(m: Pick<ExistingMachine, "configJson">): boolean {
  try {
    const services = (JSON.parse(m.configJson || "{}") as { services?: unknown }).services;
    return Array.isArray(services) && services.length > 0;
  } catch {
    return false;
  }
}
