/**
 * The NATS subjects services talk on, besides the event streams (ev.app.*, ev.machine.*, ev.host.*).
 * Commands are request/reply in queue groups; heartbeats and logs are core NATS (no history needed).
 */
export const subjects = {
  /** Placement: reserve room for a machine. Request PlaceRequest, reply PlaceResult. */
  place: "cmd.placement.place",
  /** A host agent's direct commands (signals), one subject per host. */
  hostCommand: (hostId: string, verb: string) => `cmd.host.${hostId}.${verb}`,
  /** Host heartbeats: `hosts.heartbeat.<host_id>`, a HostHeartbeat every second. */
  heartbeat: (hostId: string) => `hosts.heartbeat.${hostId}`,
  heartbeatAll: "hosts.heartbeat.*",
  /** Machine log lines, as Fly names them: `logs.<app>.<region>.<machine_id>`. */
  logs: (app: string, region: string, machineId: string) => `logs.${app}.${region}.${machineId}`,
} as const;

export interface PlaceRequest {
  machine_id: string;
  app: string;
  region: string;
  cpus: number;
  memory_mb: number;
  strategy?: "binpack" | "spread";
}

export interface PlaceResult {
  host_id: string;
  region: string;
}

export interface HostHeartbeat {
  host_id: string;
  region: string;
  cpus: number;
  memory_mb: number;
  address: string;
  machines_running: number;
  load1: number;
  free_memory_mb: number;
  ts: number;
}

export interface SignalRequest {
  app: string;
  machine_id: string;
  signal: string;
}
