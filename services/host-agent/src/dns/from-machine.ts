import { DEFAULT_PROCESS_GROUP } from "@hangar/config";
import type { ExistingMachine } from "@hangar/domain";
import type { DnsMachine } from "./names.js";

/** What the resolver knows of a machine, from its state in the MACHINES stream and its app's org. */
export function dnsMachineOf(m: ExistingMachine, org: string): DnsMachine {
  return {
    id: m.machineId,
    app: m.app,
    org,
    region: m.region,
    hostId: m.hostId,
    processGroup: processGroupOf(m.configJson),
    address: m.privateIpv6,
    ipv4: m.privateIp,
    started: m.status === "started",
    running: m.pid !== 0,
  };
}

function processGroupOf(configJson: string): string {
  try {
    const group = (JSON.parse(configJson || "{}") as { metadata?: { fly_process_group?: unknown } }).metadata
      ?.fly_process_group;
    return typeof group === "string" && group !== "" ? group : DEFAULT_PROCESS_GROUP;
  } catch {
    return DEFAULT_PROCESS_GROUP;
  }
}
