import { constants } from "node:os";
import type { MachineEvent } from "@hangar/domain";
import type { RecordedEvent } from "@hangar/eventstore";

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = constants.signals;

/**
 * An exit's signal as Fly gives it, a number (fly-go decodes it into an int): the domain keeps the
 * name, "SIG<n>" for a real-time signal Node has no name for; undefined for no signal.
 */
function exitSignalNumber(name: string | null | undefined): number | undefined {
  if (!name) return undefined;
  const realTime = /^SIG(\d+)$/.exec(name)?.[1];
  return SIGNAL_NUMBERS[name] ?? (realTime === undefined ? undefined : Number(realTime));
}

/** Whether a decision's events after an exit start the machine again. */
export function startsAgain(events: readonly RecordedEvent<MachineEvent>[], after: number): boolean {
  for (let i = after + 1; i < events.length; i++) {
    const type = events[i]?.event.type;
    if (type === "MachineRestarting" || type === "MachineStartRequested") return true;
  }
  return false;
}

/** One entry of a machine's event list, in the shape of Fly's MachineEvent. */
export interface MachineEventRecord {
  id: string;
  type: string;
  status: string;
  source: "user" | "flyd";
  timestamp: number;
  request?: Record<string, unknown>;
}

/**
 * How each stored event reads in Fly's event list; events with no place there give undefined.
 * `restarting`: an exit's decision also starts the machine again (its restart policy, or a restart
 * asked for), which Fly's exit_event says.
 */
export function toEventRecord(
  r: RecordedEvent<MachineEvent>,
  restarting = false,
): MachineEventRecord | undefined {
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
            signal: exitSignalNumber(e.data.signal),
            requested_stop: Boolean(e.data.requested),
            restarting,
            oom_killed: Boolean(e.data.oomKilled),
            exited_at: new Date(r.timeUnixMs).toISOString(),
          },
        },
      };
    case "MachineRestarting":
      return {
        ...base,
        type: "restart",
        status: "starting",
        source: "flyd",
        // restart_count is Fly's name; attempt is Hangar's own, kept for its readers.
        request: { attempt: e.data.attempt, restart_count: e.data.attempt },
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
