import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";

const messages = {
  HostRegistered: hangar.v1.HostRegistered,
  HostCordoned: hangar.v1.HostCordoned,
  HostUncordoned: hangar.v1.HostUncordoned,
  HostRemoved: hangar.v1.HostRemoved,
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
}

export type HostState =
  | { status: "absent" }
  | ({ status: "active" | "cordoned" | "removed"; cordonReason: string } & HostSpec);

export type HostCommand =
  | ({ type: "RegisterHost" } & HostSpec)
  | { type: "CordonHost"; reason: string }
  | { type: "UncordonHost" }
  | { type: "RemoveHost" };

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
            state.address === spec.address;
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
        };
        // Re-registering keeps a cordon: an operator's decision outlives a restart of the agent.
        if (state.status === "cordoned") return { ...state, ...spec };
        return { status: "active", cordonReason: "", ...spec };
      }
      case "HostCordoned":
        return state.status === "absent"
          ? state
          : { ...state, status: "cordoned", cordonReason: event.data.reason ?? "" };
      case "HostUncordoned":
        return state.status === "absent" ? state : { ...state, status: "active", cordonReason: "" };
      case "HostRemoved":
        return state.status === "absent" ? state : { ...state, status: "removed" };
    }
  },
};
