import type { MachineEvent } from "@hangar/domain";
import type { RecordedEvent } from "@hangar/eventstore";

/** One entry of a machine's event list, in the shape of Fly's MachineEvent. */
export interface MachineEventRecord {
  id: string;
  type: string;
  status: string;
  source: "user" | "flyd";
  timestamp: number;
  request?: Record<string, unknown>;
}

/** How each stored event reads in Fly's event list; events with no place there give undefined. */
export function toEventRecord(r: RecordedEvent<MachineEvent>): MachineEventRecord | undefined {
  const base = { id: r.eventId, timestamp: r.timeUnixMs };
  const e = r.event;
  switch (e.type) {
    case "MachineCreated":
      return { ...base, type: "launch", status: "created", source: "user" };
    case "MachineStartRequested":
      return { ...base, type: "start", status: "starting", source: "user" };
    case "MachineStarted":
      return {
        ...base,
        type: "start",
        status: "started",
        source: "flyd",
        request: e.data.adopted ? { adopted: true } : undefined,
      };
    case "MachineStartFailed":
      return {
        ...base,
        type: "launch",
        status: "failed",
        source: "flyd",
        request: { error: e.data.message },
      };
    case "MachineStopRequested":
      return {
        ...base,
        type: "stop",
        status: "stopping",
        source: "user",
        request: { signal: e.data.signal, timeout: e.data.timeoutS },
      };
    case "MachineRestartRequested":
      return { ...base, type: "restart", status: "stopping", source: "user" };
    case "MachineExited":
      return {
        ...base,
        type: "exit",
        status: "stopped",
        source: "flyd",
        request: {
          exit_event: {
            exit_code: e.data.codeUnknown ? null : (e.data.exitCode ?? 0),
            signal: e.data.signal || undefined,
            requested_stop: Boolean(e.data.requested),
            restarting: false,
            oom_killed: Boolean(e.data.oomKilled),
          },
        },
      };
    case "MachineRestarting":
      return {
        ...base,
        type: "restart",
        status: "starting",
        source: "flyd",
        request: { attempt: e.data.attempt },
      };
    case "MachineUpdated":
      return { ...base, type: "update", status: "replacing", source: "user" };
    case "MachineSuspendRequested":
      return { ...base, type: "suspend", status: "suspending", source: "user" };
    case "MachineSuspended":
      return { ...base, type: "suspend", status: "suspended", source: "flyd" };
    case "MachineDestroyRequested":
      return { ...base, type: "destroy", status: "destroying", source: "user" };
    case "MachineDestroyed":
      return { ...base, type: "destroy", status: "destroyed", source: "flyd" };
    case "MachineCordoned":
      return { ...base, type: "cordon", status: "cordoned", source: "user" };
    case "MachineUncordoned":
      return { ...base, type: "uncordon", status: "uncordoned", source: "user" };
    default:
      return undefined;
  }
}
