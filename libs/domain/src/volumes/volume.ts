import { createHash, randomBytes } from "node:crypto";
import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";
import { volumeNameProblem } from "./ids.js";

export {
  isSnapshotId,
  isVolumeId,
  SNAPSHOT_ID_EXAMPLE,
  SNAPSHOT_ID_PATTERN,
  VOLUME_ID_EXAMPLE,
  VOLUME_ID_PATTERN,
  VOLUME_NAME_PATTERN,
  volumeNameProblem,
} from "./ids.js";

const messages = {
  VolumeCreateRequested: hangar.v1.VolumeCreateRequested,
  VolumeCreated: hangar.v1.VolumeCreated,
  VolumeCreateFailed: hangar.v1.VolumeCreateFailed,
  VolumeUpdated: hangar.v1.VolumeUpdated,
  VolumeExtendRequested: hangar.v1.VolumeExtendRequested,
  VolumeExtended: hangar.v1.VolumeExtended,
  VolumeExtendFailed: hangar.v1.VolumeExtendFailed,
  VolumeAttached: hangar.v1.VolumeAttached,
  VolumeDetached: hangar.v1.VolumeDetached,
  VolumeDestroyRequested: hangar.v1.VolumeDestroyRequested,
  VolumeDestroyed: hangar.v1.VolumeDestroyed,
  VolumeSnapshotStarted: hangar.v1.VolumeSnapshotStarted,
  VolumeSnapshotCompleted: hangar.v1.VolumeSnapshotCompleted,
  VolumeSnapshotFailed: hangar.v1.VolumeSnapshotFailed,
  VolumeSnapshotDeleted: hangar.v1.VolumeSnapshotDeleted,
};

/** A volume's events. */
export type VolumeEvent = EventOf<typeof messages>;

/** The VOLUMES stream: one subject per volume, `ev.volume.<app>.<volume_id>`. */
export const volumesStream = defineStream({
  name: "VOLUMES",
  subjectPrefix: "ev.volume",
  codec: eventCodec(messages),
});

/** The Object Store bucket of volume snapshots (zstd images, object `<volume_id>/<snapshot_id>`). */
export const VOLUME_SNAPSHOTS_BUCKET = "VOLUME_SNAPSHOTS";

/** The largest volume, GB: Fly's limit for one volume. */
export const MAX_VOLUME_SIZE_GB = 500;
/** Snapshot retention bounds and default, days, as Fly's. */
export const MIN_SNAPSHOT_RETENTION = 1;
export const MAX_SNAPSHOT_RETENTION = 60;
export const DEFAULT_SNAPSHOT_RETENTION = 5;

/** A volume's aggregate id: `<app>.<volume_id>`. */
export function volumeAggregateId(app: string, volumeId: string): string {
  return `${app}.${volumeId}`;
}

/** 16 lowercase hex digits: random, or derived from `seed` (the same seed, the same digits). */
function idDigits(seed?: string): string {
  return seed === undefined
    ? randomBytes(8).toString("hex")
    : createHash("sha256").update(seed).digest("hex").slice(0, 16);
}

/**
 * Fly's volume id shape: `vol_` and 16 lowercase hex digits. The volume service derives it from the
 * create's command id, so a create asked twice (or resumed) can only ever name one volume.
 */
export function newVolumeId(seed?: string): string {
  return `vol_${idDigits(seed)}`;
}

/** A snapshot id: `vs_` and 16 lowercase hex digits, derived from `seed` when given. */
export function newSnapshotId(seed?: string): string {
  return `vs_${idDigits(seed)}`;
}

export type VolumeStatus = "creating" | "created" | "extending" | "failed" | "destroying" | "destroyed";

/** One snapshot of a volume, as Fly's VolumeSnapshot (plus its retention and how long the freeze took). */
export interface VolumeSnapshot {
  id: string;
  state: "creating" | "created" | "failed";
  size: number;
  stored_size: number;
  digest: string;
  freeze_ms: number;
  created_at: string;
  retention_days: number;
  type: "on_demand" | "scheduled";
  /** Why it failed; empty otherwise. */
  error: string;
}

/** What the volume service, the view and the API know of one volume. */
export interface Volume {
  id: string;
  app: string;
  org: string;
  name: string;
  region: string;
  /** The host it lives on (the API shows it as the volume's zone). */
  host_id: string;
  state: VolumeStatus;
  size_gb: number;
  fstype: "ext4";
  encrypted: false;
  snapshot_retention: number;
  auto_backup_enabled: boolean;
  attached_machine_id: string | null;
  attached_alloc_id: string | null;
  created_at: string;
  source_snapshot_id?: string;
  source_volume_id?: string;
  snapshots: VolumeSnapshot[];
  /** The command id of its create: the same create asked again gets this volume. */
  create_command_id: string;
  /** The size an extend in flight grows it to (state "extending"). */
  extending_to_gb?: number;
  /** Why the create failed (state "failed"). */
  error?: string;
}

/** A volume's state; null before its create. */
export type VolumeState = Volume | null;

export interface CreateVolumeSpec {
  volumeId: string;
  app: string;
  org: string;
  name: string;
  region: string;
  hostId: string;
  sizeGb: number;
  snapshotRetention: number;
  autoBackupEnabled: boolean;
  sourceSnapshotId?: string;
  sourceVolumeId?: string;
  commandId: string;
  /** RFC 3339 time of the request. */
  at: string;
}

export type VolumeCommand =
  | ({ type: "CreateVolume" } & CreateVolumeSpec)
  | { type: "MarkCreated" }
  | { type: "FailCreate"; reason: string }
  | { type: "UpdateVolume"; snapshotRetention?: number; autoBackupEnabled?: boolean }
  | { type: "RequestExtend"; sizeGb: number }
  | { type: "CompleteExtend"; sizeGb: number }
  | { type: "FailExtend"; sizeGb: number; reason: string }
  | { type: "AttachVolume"; machineId: string }
  | { type: "DetachVolume"; machineId: string; reason: string }
  | { type: "RequestDestroy" }
  | { type: "CompleteDestroy" }
  | { type: "StartSnapshot"; snapshotId: string; snapshotType: VolumeSnapshot["type"]; at: string }
  | {
      type: "CompleteSnapshot";
      snapshotId: string;
      size: number;
      storedSize: number;
      digest: string;
      freezeMs: number;
    }
  | { type: "FailSnapshot"; snapshotId: string; reason: string }
  | { type: "DeleteSnapshot"; snapshotId: string };

/** Why a size is refused, or undefined for 1..MAX_VOLUME_SIZE_GB whole GB. */
export function volumeSizeProblem(sizeGb: number): string | undefined {
  if (!Number.isInteger(sizeGb) || sizeGb < 1 || sizeGb > MAX_VOLUME_SIZE_GB)
    return `size_gb must be a whole number from 1 to ${MAX_VOLUME_SIZE_GB}, not ${sizeGb}`;
  return undefined;
}

/** Why a snapshot retention is refused, or undefined for MIN..MAX_SNAPSHOT_RETENTION days. */
export function snapshotRetentionProblem(days: number): string | undefined {
  if (!Number.isInteger(days) || days < MIN_SNAPSHOT_RETENTION || days > MAX_SNAPSHOT_RETENTION)
    return `snapshot_retention must be ${MIN_SNAPSHOT_RETENTION} to ${MAX_SNAPSHOT_RETENTION} days, not ${days}`;
  return undefined;
}

/** True when machines may use it: made, not being destroyed. */
export function volumeIsUsable(v: VolumeState): boolean {
  return v !== null && (v.state === "created" || v.state === "extending");
}

function invalid(problem: string | undefined): void {
  if (problem) throw new DomainError(problem, "invalid_argument");
}

function existing(state: VolumeState): Volume {
  if (state === null || state.state === "destroyed") throw new DomainError("volume not found", "not_found");
  return state;
}

function usable(state: VolumeState, doing: string): Volume {
  const v = existing(state);
  if (!volumeIsUsable(v))
    throw new DomainError(`cannot ${doing} volume ${v.id}: it is ${v.state}`, "failed_precondition");
  return v;
}

/**
 * The volume aggregate. Disk work is recorded in two steps (requested, then done or failed) around
 * the host agent's answer; the decider checks that each step follows the one before, and answers a
 * repeated step with no events, so a retried or resumed command is harmless.
 */
export const volumeDecider: Decider<VolumeState, VolumeCommand, VolumeEvent> = {
  initialState: () => null,
  decide(command, state) {
    switch (command.type) {
      case "CreateVolume": {
        if (state !== null) {
          if (state.create_command_id === command.commandId) return [];
          throw new DomainError(`volume ${state.id} exists`, "already_exists");
        }
        invalid(volumeNameProblem(command.name));
        invalid(volumeSizeProblem(command.sizeGb));
        invalid(snapshotRetentionProblem(command.snapshotRetention));
        if (!command.hostId || !command.region)
          throw new DomainError("a volume needs a region and a host", "invalid_argument");
        return [
          {
            type: "VolumeCreateRequested",
            data: {
              volumeId: command.volumeId,
              app: command.app,
              org: command.org,
              name: command.name,
              region: command.region,
              hostId: command.hostId,
              sizeGb: command.sizeGb,
              snapshotRetention: command.snapshotRetention,
              autoBackupEnabled: command.autoBackupEnabled,
              sourceSnapshotId: command.sourceSnapshotId ?? "",
              sourceVolumeId: command.sourceVolumeId ?? "",
              commandId: command.commandId,
              createdAt: command.at,
            },
          },
        ];
      }
      case "MarkCreated": {
        const v = existing(state);
        if (v.state === "creating") return [{ type: "VolumeCreated", data: { hostId: v.host_id } }];
        if (v.state === "created" || v.state === "extending") return [];
        throw new DomainError(`volume ${v.id} is ${v.state}, not being created`, "failed_precondition");
      }
      case "FailCreate": {
        const v = existing(state);
        if (v.state === "creating") return [{ type: "VolumeCreateFailed", data: { reason: command.reason } }];
        if (v.state === "failed") return [];
        throw new DomainError(`volume ${v.id} is ${v.state}, not being created`, "failed_precondition");
      }
      case "UpdateVolume": {
        const v = existing(state);
        if (v.state === "destroying" || v.state === "failed")
          throw new DomainError(`cannot update volume ${v.id}: it is ${v.state}`, "failed_precondition");
        const retention = command.snapshotRetention ?? v.snapshot_retention;
        const autoBackup = command.autoBackupEnabled ?? v.auto_backup_enabled;
        invalid(snapshotRetentionProblem(retention));
        if (retention === v.snapshot_retention && autoBackup === v.auto_backup_enabled) return [];
        return [
          { type: "VolumeUpdated", data: { snapshotRetention: retention, autoBackupEnabled: autoBackup } },
        ];
      }
      case "RequestExtend": {
        const v = usable(state, "extend");
        if (v.state === "extending") {
          if (v.extending_to_gb === command.sizeGb) return [];
          throw new DomainError(
            `volume ${v.id} is being extended to ${v.extending_to_gb} GB; try again when it is done`,
            "failed_precondition",
          );
        }
        if (command.sizeGb <= v.size_gb)
          throw new DomainError(
            `volume ${v.id} is ${v.size_gb} GB; a volume only grows, so size_gb must be larger`,
            "invalid_argument",
          );
        invalid(volumeSizeProblem(command.sizeGb));
        return [{ type: "VolumeExtendRequested", data: { sizeGb: command.sizeGb } }];
      }
      case "CompleteExtend": {
        const v = existing(state);
        if (v.state === "extending" && v.extending_to_gb === command.sizeGb)
          return [{ type: "VolumeExtended", data: { sizeGb: command.sizeGb } }];
        if (v.size_gb >= command.sizeGb) return [];
        throw new DomainError(
          `volume ${v.id} is not being extended to ${command.sizeGb} GB`,
          "failed_precondition",
        );
      }
      case "FailExtend": {
        const v = existing(state);
        if (v.state !== "extending" || v.extending_to_gb !== command.sizeGb) return [];
        return [{ type: "VolumeExtendFailed", data: { sizeGb: command.sizeGb, reason: command.reason } }];
      }
      case "AttachVolume": {
        const v = usable(state, "attach");
        if (v.attached_machine_id === command.machineId) return [];
        if (v.attached_machine_id !== null)
          throw new DomainError(`volume ${v.id} is attached to machine ${v.attached_machine_id}`, "conflict");
        return [{ type: "VolumeAttached", data: { machineId: command.machineId } }];
      }
      case "DetachVolume": {
        if (state === null || state.attached_machine_id !== command.machineId) return [];
        return [{ type: "VolumeDetached", data: { machineId: command.machineId, reason: command.reason } }];
      }
      case "RequestDestroy": {
        if (state === null) throw new DomainError("volume not found", "not_found");
        if (state.state === "destroying" || state.state === "destroyed") return [];
        if (state.attached_machine_id !== null)
          throw new DomainError(
            `volume ${state.id} is attached to machine ${state.attached_machine_id}; destroy the machine first`,
            "conflict",
          );
        if (state.state === "creating" || state.state === "extending")
          throw new DomainError(
            `volume ${state.id} is ${state.state}; try again when that is done`,
            "failed_precondition",
          );
        const taking = state.snapshots.find((s) => s.state === "creating");
        if (taking)
          throw new DomainError(
            `snapshot ${taking.id} of volume ${state.id} is being taken; try again when it is done`,
            "failed_precondition",
          );
        return [{ type: "VolumeDestroyRequested", data: {} }];
      }
      case "CompleteDestroy": {
        if (state === null) throw new DomainError("volume not found", "not_found");
        if (state.state === "destroyed") return [];
        if (state.state !== "destroying")
          throw new DomainError(
            `volume ${state.id} is ${state.state}, not being destroyed`,
            "failed_precondition",
          );
        return [{ type: "VolumeDestroyed", data: {} }];
      }
      case "StartSnapshot": {
        const v = usable(state, "snapshot");
        if (v.snapshots.some((s) => s.id === command.snapshotId)) return [];
        const taking = v.snapshots.find((s) => s.state === "creating");
        if (taking)
          throw new DomainError(
            `snapshot ${taking.id} of volume ${v.id} is being taken; try again when it is done`,
            "failed_precondition",
          );
        return [
          {
            type: "VolumeSnapshotStarted",
            data: {
              snapshotId: command.snapshotId,
              type: command.snapshotType,
              retentionDays: v.snapshot_retention,
              createdAt: command.at,
            },
          },
        ];
      }
      case "CompleteSnapshot": {
        const s = snapshotOf(state, command.snapshotId);
        if (s.state === "created") return [];
        if (s.state === "failed")
          throw new DomainError(`snapshot ${s.id} was recorded failed: ${s.error}`, "failed_precondition");
        return [
          {
            type: "VolumeSnapshotCompleted",
            data: {
              snapshotId: command.snapshotId,
              size: command.size,
              storedSize: command.storedSize,
              digest: command.digest,
              freezeMs: command.freezeMs,
            },
          },
        ];
      }
      case "FailSnapshot": {
        const s = snapshotOf(state, command.snapshotId);
        if (s.state !== "creating") return [];
        return [{ type: "VolumeSnapshotFailed", data: { snapshotId: s.id, reason: command.reason } }];
      }
      case "DeleteSnapshot": {
        if (state === null || !state.snapshots.some((s) => s.id === command.snapshotId)) return [];
        const s = snapshotOf(state, command.snapshotId);
        if (s.state === "creating")
          throw new DomainError(`snapshot ${s.id} is being taken`, "failed_precondition");
        return [{ type: "VolumeSnapshotDeleted", data: { snapshotId: s.id } }];
      }
    }
  },
  evolve(state, event) {
    if (event.type === "VolumeCreateRequested") {
      const d = event.data;
      return {
        id: d.volumeId ?? "",
        app: d.app ?? "",
        org: d.org ?? "",
        name: d.name ?? "",
        region: d.region ?? "",
        host_id: d.hostId ?? "",
        state: "creating",
        size_gb: d.sizeGb ?? 0,
        fstype: "ext4",
        encrypted: false,
        snapshot_retention: d.snapshotRetention ?? DEFAULT_SNAPSHOT_RETENTION,
        auto_backup_enabled: d.autoBackupEnabled ?? false,
        attached_machine_id: null,
        attached_alloc_id: null,
        created_at: d.createdAt ?? "",
        ...(d.sourceSnapshotId ? { source_snapshot_id: d.sourceSnapshotId } : {}),
        ...(d.sourceVolumeId ? { source_volume_id: d.sourceVolumeId } : {}),
        snapshots: [],
        create_command_id: d.commandId ?? "",
      };
    }
    if (state === null) return state;
    switch (event.type) {
      case "VolumeCreated":
        return { ...state, state: "created" };
      case "VolumeCreateFailed":
        return { ...state, state: "failed", error: event.data.reason ?? "" };
      case "VolumeUpdated":
        return {
          ...state,
          snapshot_retention: event.data.snapshotRetention ?? state.snapshot_retention,
          auto_backup_enabled: event.data.autoBackupEnabled ?? false,
        };
      case "VolumeExtendRequested":
        return { ...state, state: "extending", extending_to_gb: event.data.sizeGb ?? state.size_gb };
      case "VolumeExtended": {
        const { extending_to_gb: _, ...rest } = state;
        return { ...rest, state: "created", size_gb: event.data.sizeGb ?? state.size_gb };
      }
      case "VolumeExtendFailed": {
        const { extending_to_gb: _, ...rest } = state;
        return { ...rest, state: "created" };
      }
      case "VolumeAttached":
        return { ...state, attached_machine_id: event.data.machineId ?? "" };
      case "VolumeDetached":
        return { ...state, attached_machine_id: null };
      case "VolumeDestroyRequested":
        return { ...state, state: "destroying" };
      case "VolumeDestroyed":
        return { ...state, state: "destroyed" };
      case "VolumeSnapshotStarted": {
        const d = event.data;
        const snapshot: VolumeSnapshot = {
          id: d.snapshotId ?? "",
          state: "creating",
          size: 0,
          stored_size: 0,
          digest: "",
          freeze_ms: 0,
          created_at: d.createdAt ?? "",
          retention_days: d.retentionDays ?? state.snapshot_retention,
          type: d.type === "scheduled" ? "scheduled" : "on_demand",
          error: "",
        };
        return { ...state, snapshots: [...state.snapshots, snapshot] };
      }
      case "VolumeSnapshotCompleted": {
        const d = event.data;
        return withSnapshot(state, d.snapshotId ?? "", (s) => ({
          ...s,
          state: "created",
          size: Number(d.size ?? 0),
          stored_size: Number(d.storedSize ?? 0),
          digest: d.digest ?? "",
          freeze_ms: d.freezeMs ?? 0,
        }));
      }
      case "VolumeSnapshotFailed":
        return withSnapshot(state, event.data.snapshotId ?? "", (s) => ({
          ...s,
          state: "failed",
          error: event.data.reason ?? "",
        }));
      case "VolumeSnapshotDeleted":
        return { ...state, snapshots: state.snapshots.filter((s) => s.id !== event.data.snapshotId) };
    }
  },
};

function snapshotOf(state: VolumeState, snapshotId: string): VolumeSnapshot {
  const s = state?.snapshots.find((x) => x.id === snapshotId);
  if (!s) throw new DomainError(`snapshot ${snapshotId} not found`, "not_found");
  return s;
}

function withSnapshot(v: Volume, id: string, change: (s: VolumeSnapshot) => VolumeSnapshot): Volume {
  return { ...v, snapshots: v.snapshots.map((s) => (s.id === id ? change(s) : s)) };
}

/** The snapshots of a volume older than their retention at `nowMs` (those pruning deletes). */
export function expiredSnapshots(v: Volume, nowMs: number): VolumeSnapshot[] {
  const day = 86_400_000;
  return v.snapshots.filter(
    (s) => s.state !== "creating" && nowMs - Date.parse(s.created_at) > s.retention_days * day,
  );
}
