import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";

const messages = {
  HostRegistered: hangar.v1.HostRegistered,
  HostCordoned: hangar.v1.HostCordoned,
  HostUncordoned: hangar.v1.HostUncordoned,
  HostRemoved: hangar.v1.HostRemoved,
  HostMachineReserved: hangar.v1.HostMachineReserved,
  HostMachineReleased: hangar.v1.HostMachineReleased,
};

/** A host's events. */
export type HostEvent = EventOf<typeof messages>;

/** The HOSTS stream: one subject per host, `ev.host.<host_id>`. */
export const hostsStream = defineStream({
  name: "HOSTS",
  subjectPrefix: "ev.host",
  codec: eventCodec(messages),
});

export interface HostSpec {
  hostId: string;
  region: string;
  cpus: number;
  memoryMb: number;
  address: string;
  /** Where other hosts route this host's 6PN traffic (its IPv6 underlay address); empty when alone. */
  underlayIp: string;
}

/** Room a machine holds on a host. */
export interface Reservation {
  app: string;
  cpus: number;
  memoryMb: number;
}

export type HostState =
  | { status: "absent" }
  | ({
      status: "active" | "cordoned" | "removed";
      cordonReason: string;
      /** Reservations by machine id. */
      reservations: Record<string, Reservation>;
      usedCpus: number;
      usedMemoryMb: number;
    } & HostSpec);

/** A host that registered at some point (active, cordoned or removed). */
export type KnownHost = Exclude<HostState, { status: "absent" }>;

export type HostCommand =
  | ({ type: "RegisterHost" } & HostSpec)
  | { type: "CordonHost"; reason: string }
  | { type: "UncordonHost" }
  | { type: "RemoveHost" }
  | ({ type: "ReserveMachine"; machineId: string } & Reservation)
  | { type: "ReleaseMachine"; machineId: string; reason: string };

/** Whether a host has room for a guest of this size. */
export function hostHasRoom(state: HostState, cpus: number, memoryMb: number): boolean {
  if (state.status !== "active") return false;
  return state.usedCpus + cpus <= state.cpus && state.usedMemoryMb + memoryMb <= state.memoryMb;
}

/** The host aggregate: a host registers (again when its capacity changes), may be cordoned, and is removed. */
export const hostDecider: Decider<HostState, HostCommand, HostEvent> = {
  initialState: () => ({ status: "absent" }),
  decide(command, state) {
    switch (command.type) {
      case "RegisterHost": {
        const { type: _, ...spec } = command;
        if (spec.cpus <= 0 || spec.memoryMb <= 0) {
          throw new DomainError("a host needs at least one cpu and some memory", "invalid_argument");
        }
        if (state.status === "active" || state.status === "cordoned") {
          const same =
            state.region === spec.region &&
            state.cpus === spec.cpus &&
            state.memoryMb === spec.memoryMb &&
            state.address === spec.address &&
            state.underlayIp === spec.underlayIp;
          if (same) return [];
        }
        return [{ type: "HostRegistered", data: spec }];
      }
      case "CordonHost":
        if (state.status === "absent" || state.status === "removed")
          throw new DomainError("host not found", "not_found");
        return state.status === "cordoned"
          ? []
          : [{ type: "HostCordoned", data: { reason: command.reason } }];
      case "UncordonHost":
        if (state.status === "absent" || state.status === "removed")
          throw new DomainError("host not found", "not_found");
        return state.status === "active" ? [] : [{ type: "HostUncordoned", data: {} }];
      case "RemoveHost":
        if (state.status === "absent" || state.status === "removed")
          throw new DomainError("host not found", "not_found");
        return [{ type: "HostRemoved", data: {} }];
      case "ReserveMachine": {
        if (state.status === "absent" || state.status === "removed")
          throw new DomainError("host not found", "not_found");
        // The same machine asking again gets the room it already has: placement may be retried.
        if (state.reservations[command.machineId]) return [];
        if (!hostHasRoom(state, command.cpus, command.memoryMb)) {
          throw new DomainError(
            state.status === "cordoned"
              ? `host ${state.hostId} is cordoned`
              : `host ${state.hostId} has no room for ${command.cpus} cpus and ${command.memoryMb} MB`,
            "insufficient_capacity",
          );
        }
        return [
          {
            type: "HostMachineReserved",
            data: {
              machineId: command.machineId,
              app: command.app,
              cpus: command.cpus,
              memoryMb: command.memoryMb,
            },
          },
        ];
      }
      case "ReleaseMachine":
        if (state.status === "absent" || !state.reservations[command.machineId]) return [];
        return [
          { type: "HostMachineReleased", data: { machineId: command.machineId, reason: command.reason } },
        ];
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case "HostRegistered": {
        const d = event.data;
        const spec = {
          hostId: d.hostId ?? "",
          region: d.region ?? "",
          cpus: d.cpus ?? 0,
          memoryMb: d.memoryMb ?? 0,
          address: d.address ?? "",
          underlayIp: d.underlayIp ?? "",
        };
        // Re-registering keeps a cordon: an operator's decision outlives a restart of the agent.
        if (state.status === "cordoned") return { ...state, ...spec };
        if (state.status !== "absent") return { ...state, ...spec, status: "active" };
        return {
          status: "active",
          cordonReason: "",
          reservations: {},
          usedCpus: 0,
          usedMemoryMb: 0,
          ...spec,
        };
      }
      case "HostCordoned":
        return state.status === "absent"
          ? state
          : { ...state, status: "cordoned", cordonReason: event.data.reason ?? "" };
      case "HostUncordoned":
        return state.status === "absent" ? state : { ...state, status: "active", cordonReason: "" };
      case "HostRemoved":
        return state.status === "absent" ? state : { ...state, status: "removed" };
      case "HostMachineReserved": {
        if (state.status === "absent") return state;
        const d = event.data;
        const r = { app: d.app ?? "", cpus: d.cpus ?? 0, memoryMb: d.memoryMb ?? 0 };
        return {
          ...state,
          reservations: { ...state.reservations, [d.machineId ?? ""]: r },
          usedCpus: state.usedCpus + r.cpus,
          usedMemoryMb: state.usedMemoryMb + r.memoryMb,
        };
      }
      case "HostMachineReleased": {
        if (state.status === "absent") return state;
        const id = event.data.machineId ?? "";
        const r = state.reservations[id];
        if (!r) return state;
        const { [id]: _, ...rest } = state.reservations;
        return {
          ...state,
          reservations: rest,
          usedCpus: state.usedCpus - r.cpus,
          usedMemoryMb: state.usedMemoryMb - r.memoryMb,
        };
      }
    }
  },
};
