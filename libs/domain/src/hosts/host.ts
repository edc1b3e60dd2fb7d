import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";

const messages = {
  HostRegistered: hangar.v1.HostRegistered,
  HostCordoned: hangar.v1.HostCordoned,
  HostUncordoned: hangar.v1.HostUncordoned,
  HostRemoved: hangar.v1.HostRemoved,
  HostMachineReserved: hangar.v1.HostMachineReserved,
  HostMachineReleased: hangar.v1.HostMachineReleased,
  HostVolumeReserved: hangar.v1.HostVolumeReserved,
  HostVolumeReleased: hangar.v1.HostVolumeReleased,
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
  /** Room for volumes, GiB (the host agent's HANGAR_HOST_AGENT_VOLUMES_DISK_GB); 0 or absent: none. */
  diskGb?: number;
  /** Its host dedication group (Fly's host_dedication_id): only machines asking for it go there. Empty or absent: shared. */
  dedicationId?: string;
  /** The organization whose machines may use the group (a dedicated host's only). */
  dedicationOrg?: string;
}

/** Room a machine holds on a host. */
export interface Reservation {
  app: string;
  cpus: number;
  memoryMb: number;
}

/** Disk room a volume holds on a host. */
export interface VolumeReservation {
  app: string;
  sizeGb: number;
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
      /** Disk reservations by volume id. */
      volumes: Record<string, VolumeReservation>;
      usedDiskGb: number;
      diskGb: number;
    } & HostSpec);

/** A host that registered at some point (active, cordoned or removed). */
export type KnownHost = Exclude<HostState, { status: "absent" }>;

export type HostCommand =
  | ({ type: "RegisterHost" } & HostSpec)
  | { type: "CordonHost"; reason: string }
  | { type: "UncordonHost" }
  | { type: "RemoveHost" }
  | ({ type: "ReserveMachine"; machineId: string } & Reservation)
  | { type: "ReleaseMachine"; machineId: string; reason: string }
  | ({ type: "ReserveVolume"; volumeId: string } & VolumeReservation)
  | { type: "ReleaseVolume"; volumeId: string };

/** Whether a host has room for a guest of this size. */
export function hostHasRoom(state: HostState, cpus: number, memoryMb: number): boolean {
  if (state.status !== "active") return false;
  return state.usedCpus + cpus <= state.cpus && state.usedMemoryMb + memoryMb <= state.memoryMb;
}

/**
 * Whether an active host has disk room for a volume of `sizeGb`; the volume's own reservation (an
 * extend) counts as free.
 */
export function hostHasDiskRoom(state: HostState, sizeGb: number, volumeId?: string): boolean {
  if (state.status !== "active") return false;
  const own = volumeId === undefined ? 0 : (state.volumes[volumeId]?.sizeGb ?? 0);
  return state.usedDiskGb - own + sizeGb <= state.diskGb;
}

/**
 * A host's state with other machine reservations: a literal of its fields, which V8 builds many times
 * faster than a spread of the state (placement folds one per machine placed).
 */
function withMachines(
  state: KnownHost,
  reservations: Record<string, Reservation>,
  usedCpus: number,
  usedMemoryMb: number,
): KnownHost {
  return {
    status: state.status,
    cordonReason: state.cordonReason,
    reservations,
    usedCpus,
    usedMemoryMb,
    volumes: state.volumes,
    usedDiskGb: state.usedDiskGb,
    diskGb: state.diskGb,
    hostId: state.hostId,
    region: state.region,
    cpus: state.cpus,
    memoryMb: state.memoryMb,
    address: state.address,
    underlayIp: state.underlayIp,
    ...(state.dedicationId
      ? { dedicationId: state.dedicationId, dedicationOrg: state.dedicationOrg ?? "" }
      : {}),
  };
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
            state.underlayIp === spec.underlayIp &&
            state.diskGb === (spec.diskGb ?? 0) &&
            (state.dedicationId ?? "") === (spec.dedicationId ?? "") &&
            (state.dedicationOrg ?? "") === (spec.dedicationOrg ?? "");
          if (same) return [];
        }
        const { dedicationId, dedicationOrg, ...rest } = spec;
        return [
          {
            type: "HostRegistered",
            data: {
              ...rest,
              diskGb: spec.diskGb ?? 0,
              ...(dedicationId ? { dedicationId, dedicationOrg: dedicationOrg ?? "" } : {}),
            },
          },
        ];
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
      case "ReserveVolume": {
        if (state.status === "absent" || state.status === "removed")
          throw new DomainError("host not found", "not_found");
        if (command.sizeGb <= 0) throw new DomainError("a volume needs at least 1 GB", "invalid_argument");
        // Asked again with the size it holds (a retried placement or extend): nothing to do.
        if (state.volumes[command.volumeId]?.sizeGb === command.sizeGb) return [];
        if (!hostHasDiskRoom(state, command.sizeGb, command.volumeId)) {
          throw new DomainError(
            state.status === "cordoned"
              ? `host ${state.hostId} is cordoned`
              : `host ${state.hostId} has no disk room for ${command.sizeGb} GB (${state.diskGb - state.usedDiskGb} GB free of ${state.diskGb})`,
            "insufficient_capacity",
          );
        }
        return [
          {
            type: "HostVolumeReserved",
            data: { volumeId: command.volumeId, app: command.app, sizeGb: command.sizeGb },
          },
        ];
      }
      case "ReleaseVolume":
        if (state.status === "absent" || !state.volumes[command.volumeId]) return [];
        return [{ type: "HostVolumeReleased", data: { volumeId: command.volumeId } }];
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
          diskGb: d.diskGb ?? 0,
          dedicationId: d.dedicationId ?? "",
          dedicationOrg: d.dedicationOrg ?? "",
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
          volumes: {},
          usedDiskGb: 0,
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
        return withMachines(
          state,
          { ...state.reservations, [d.machineId ?? ""]: r },
          state.usedCpus + r.cpus,
          state.usedMemoryMb + r.memoryMb,
        );
      }
      case "HostMachineReleased": {
        if (state.status === "absent") return state;
        const id = event.data.machineId ?? "";
        const r = state.reservations[id];
        if (!r) return state;
        const rest: Record<string, Reservation> = {};
        for (const other in state.reservations)
          if (other !== id) rest[other] = state.reservations[other] as Reservation;
        return withMachines(state, rest, state.usedCpus - r.cpus, state.usedMemoryMb - r.memoryMb);
      }
      case "HostVolumeReserved": {
        if (state.status === "absent") return state;
        const d = event.data;
        const id = d.volumeId ?? "";
        const sizeGb = d.sizeGb ?? 0;
        const before = state.volumes[id]?.sizeGb ?? 0;
        return {
          ...state,
          volumes: { ...state.volumes, [id]: { app: d.app ?? "", sizeGb } },
          usedDiskGb: state.usedDiskGb - before + sizeGb,
        };
      }
      case "HostVolumeReleased": {
        if (state.status === "absent") return state;
        const id = event.data.volumeId ?? "";
        const v = state.volumes[id];
        if (!v) return state;
        const { [id]: _, ...rest } = state.volumes;
        return { ...state, volumes: rest, usedDiskGb: state.usedDiskGb - v.sizeGb };
      }
    }
  },
};
