import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";

const messages = {
  MachineCreated: hangar.v1.MachineCreated,
  MachineStartRequested: hangar.v1.MachineStartRequested,
  MachineStarted: hangar.v1.MachineStarted,
  MachineStopRequested: hangar.v1.MachineStopRequested,
  MachineExited: hangar.v1.MachineExited,
  MachineDestroyRequested: hangar.v1.MachineDestroyRequested,
  MachineDestroyed: hangar.v1.MachineDestroyed,
};

/** A machine's events. */
export type MachineEvent = EventOf<typeof messages>;

/** The MACHINES stream: one subject per machine, `ev.machine.<app>.<machine_id>`. */
export const machinesStream = defineStream({
  name: "MACHINES",
  subjectPrefix: "ev.machine",
  codec: eventCodec(messages),
});

/** The aggregate id of a machine: its app and id, which is also the tail of its subject. */
export function machineAggregateId(app: string, machineId: string): string {
  return `${app}.${machineId}`;
}

/** The states of Fly's machine state machine that this aggregate has so far. */
export type MachineStatus =
  | "created"
  | "starting"
  | "started"
  | "stopping"
  | "stopped"
  | "destroying"
  | "destroyed";

export type MachineState =
  | { status: "absent" }
  | {
      status: MachineStatus;
      machineId: string;
      app: string;
      name: string;
      region: string;
      instanceId: string;
      configJson: string;
      hostId: string;
      pid: number;
      lastExitCode: number | null;
    };

export type MachineCommand =
  | {
      type: "CreateMachine";
      machineId: string;
      app: string;
      name: string;
      region: string;
      instanceId: string;
      configJson: string;
      skipLaunch: boolean;
    }
  | { type: "StartMachine" }
  | { type: "RecordStarted"; hostId: string; pid: number }
  | { type: "StopMachine"; signal: string; timeoutS: number }
  | { type: "RecordExited"; exitCode: number; signal: string }
  | { type: "DestroyMachine"; force: boolean }
  | { type: "RecordDestroyed" };

function invalid(state: MachineState, action: string): DomainError {
  const status = state.status === "absent" ? "absent" : state.status;
  return new DomainError(`cannot ${action} a machine that is ${status}`, "failed_precondition");
}

/**
 * The machine aggregate. The control plane asks (…Requested), the host agent reports what
 * happened (Started, Exited, Destroyed). Asking for the state a machine is already heading to
 * decides nothing, so retried requests are harmless.
 */
export const machineDecider: Decider<MachineState, MachineCommand, MachineEvent> = {
  initialState: () => ({ status: "absent" }),
  decide(command, state) {
    if (command.type === "CreateMachine") {
      if (state.status !== "absent")
        throw new DomainError(`machine ${command.machineId} already exists`, "already_exists");
      const { type: _, ...created } = command;
      const events: MachineEvent[] = [{ type: "MachineCreated", data: created }];
      if (!command.skipLaunch)
        events.push({ type: "MachineStartRequested", data: { instanceId: command.instanceId } });
      return events;
    }
    if (state.status === "absent") throw new DomainError("machine not found", "not_found");
    if (state.status === "destroyed" && command.type !== "RecordDestroyed") {
      throw new DomainError("machine is destroyed", "not_found");
    }
    switch (command.type) {
      case "StartMachine":
        if (state.status === "starting" || state.status === "started") return [];
        if (state.status !== "created" && state.status !== "stopped") throw invalid(state, "start");
        return [{ type: "MachineStartRequested", data: { instanceId: state.instanceId } }];
      case "RecordStarted":
        if (state.status === "started" && state.pid === command.pid) return [];
        if (state.status !== "starting") throw invalid(state, "record a start of");
        return [{ type: "MachineStarted", data: { hostId: command.hostId, pid: command.pid } }];
      case "StopMachine":
        if (state.status === "stopping" || state.status === "stopped") return [];
        if (state.status !== "started" && state.status !== "starting") throw invalid(state, "stop");
        return [
          { type: "MachineStopRequested", data: { signal: command.signal, timeoutS: command.timeoutS } },
        ];
      case "RecordExited":
        if (state.status === "stopped") return [];
        if (state.status !== "started" && state.status !== "starting" && state.status !== "stopping") {
          throw invalid(state, "record an exit of");
        }
        return [
          {
            type: "MachineExited",
            data: {
              exitCode: command.exitCode,
              signal: command.signal,
              requested: state.status === "stopping",
            },
          },
        ];
      case "DestroyMachine":
        if (state.status === "destroying") return [];
        if (!command.force && state.status !== "stopped" && state.status !== "created") {
          throw new DomainError(
            `machine is ${state.status}: stop it first, or destroy it with force`,
            "failed_precondition",
          );
        }
        return [{ type: "MachineDestroyRequested", data: { force: command.force } }];
      case "RecordDestroyed":
        if (state.status === "destroyed") return [];
        if (state.status !== "destroying") throw invalid(state, "record the destruction of");
        return [{ type: "MachineDestroyed", data: {} }];
    }
  },
  evolve(state, event) {
    if (event.type === "MachineCreated") {
      const d = event.data;
      return {
        status: "created",
        machineId: d.machineId ?? "",
        app: d.app ?? "",
        name: d.name ?? "",
        region: d.region ?? "",
        instanceId: d.instanceId ?? "",
        configJson: d.configJson ?? "",
        hostId: "",
        pid: 0,
        lastExitCode: null,
      };
    }
    if (state.status === "absent") return state;
    switch (event.type) {
      case "MachineStartRequested":
        return { ...state, status: "starting" };
      case "MachineStarted":
        return { ...state, status: "started", hostId: event.data.hostId ?? "", pid: event.data.pid ?? 0 };
      case "MachineStopRequested":
        return { ...state, status: "stopping" };
      case "MachineExited":
        return { ...state, status: "stopped", pid: 0, lastExitCode: event.data.exitCode ?? 0 };
      case "MachineDestroyRequested":
        return { ...state, status: "destroying" };
      case "MachineDestroyed":
        return { ...state, status: "destroyed", pid: 0 };
    }
  },
};
