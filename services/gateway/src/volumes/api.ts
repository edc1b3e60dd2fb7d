import { RegionSchema } from "@hangar/config";
import {
  MAX_SNAPSHOT_RETENTION,
  MAX_VOLUME_SIZE_GB,
  MIN_SNAPSHOT_RETENTION,
  SNAPSHOT_ID_EXAMPLE,
  SNAPSHOT_ID_PATTERN,
  VOLUME_ID_EXAMPLE,
  VOLUME_ID_PATTERN,
  VOLUME_NAME_PATTERN,
} from "@hangar/domain";
import { z } from "zod";
import type { RequestContext } from "../http/backend.js";

/**
 * A volume name as Fly allows it (the domain's VOLUME_NAME_PATTERN, volumeNameProblem's): lowercase
 * letters, digits and underscores, at most 30. Names also appear in fly.toml's `[mounts] source`, so
 * dashes (which Fly refuses) are refused here too.
 */
export const VolumeNameSchema = z
  .string()
  .regex(VOLUME_NAME_PATTERN, "expected lowercase letters, digits and underscores (at most 30)");

/** A volume id as the path and mounts carry it (the domain's isVolumeId): `vol_` and 16 lowercase letters or digits. */
export const VolumeIdSchema = z
  .string()
  .regex(VOLUME_ID_PATTERN, `expected a volume id such as ${VOLUME_ID_EXAMPLE}`);

/** A snapshot id (the domain's isSnapshotId): `vs_` and 16 lowercase letters or digits. */
export const SnapshotIdSchema = z
  .string()
  .regex(SNAPSHOT_ID_PATTERN, `expected a snapshot id such as ${SNAPSHOT_ID_EXAMPLE}`);

// The volume decider's bounds (Fly's), checked here too so that a bad body is a 400 naming its field.
const SizeSchema = z.number().int().min(1).max(MAX_VOLUME_SIZE_GB);
const RetentionSchema = z.number().int().min(MIN_SNAPSHOT_RETENTION).max(MAX_SNAPSHOT_RETENTION);

/**
 * Fly's CreateVolumeRequest. `encrypted`, `compute`, `machines_only` and `unique_zone_app_wide` are
 * accepted because flyctl sends them, and have no effect: Hangar's volumes are not encrypted (the
 * answer says `encrypted: false`) and every volume may be used by machines. `region` defaults to the
 * platform's region, `size_gb` to 1 as flyctl's (a restore's or a fork's to its source's size).
 */
export const CreateVolumeRequestSchema = z.looseObject({
  name: VolumeNameSchema,
  region: RegionSchema.nullish(),
  size_gb: SizeSchema.nullish(),
  snapshot_id: SnapshotIdSchema.nullish(),
  source_volume_id: VolumeIdSchema.nullish(),
  snapshot_retention: RetentionSchema.nullish(),
  auto_backup_enabled: z.boolean().nullish(),
  require_unique_zone: z.boolean().nullish(),
  encrypted: z.boolean().nullish(),
  fstype: z.literal("ext4").nullish(),
});
export type CreateVolumeRequest = z.output<typeof CreateVolumeRequestSchema>;

/** Fly's UpdateVolumeRequest, with `auto_backup_enabled` as Fly's current API takes it. */
export const UpdateVolumeRequestSchema = z.looseObject({
  snapshot_retention: RetentionSchema.nullish(),
  auto_backup_enabled: z.boolean().nullish(),
});
export type UpdateVolumeRequest = z.output<typeof UpdateVolumeRequestSchema>;

/** Fly's ExtendVolumeRequest: the new size, larger than the current one. */
export const ExtendVolumeRequestSchema = z.looseObject({ size_gb: SizeSchema });

/** Fly's `Volume`, with `auto_backup_enabled` as Fly's current API answers it; times are RFC 3339. */
export interface VolumeView {
  id: string;
  name: string;
  state: string;
  size_gb: number;
  region: string;
  zone: string;
  encrypted: boolean;
  fstype: string;
  created_at: string;
  snapshot_retention: number;
  auto_backup_enabled: boolean;
  attached_machine_id: string | null;
  attached_alloc_id: string | null;
  block_size: number;
  blocks: number;
  blocks_free: number;
  blocks_avail: number;
}

/** Fly's `VolumeSnapshot`, with the retention and kind Fly's current API adds. */
export interface VolumeSnapshotView {
  id: string;
  size: number;
  digest: string;
  created_at: string;
  status: string;
  retention_days: number;
  type: string;
}

/** Fly's `ExtendVolumeResponse`: the volume grows while mounted, so no restart is needed. */
export interface ExtendVolumeView {
  needs_restart: boolean;
  volume: VolumeView;
}

/**
 * What the Volumes API needs from the platform, per app (already authorized). Failures are ApiErrors,
 * DomainErrors or CommandErrors, which the error handler maps by their code (http/errors.ts).
 */
export interface VolumesBackend {
  /** The app's volumes that are not destroyed, oldest first. */
  listVolumes(app: string, ctx: RequestContext): Promise<VolumeView[]>;
  /** Creates a volume in `org`'s app and answers it once it is usable. */
  createVolume(
    app: string,
    org: string,
    input: CreateVolumeRequest,
    ctx: RequestContext,
  ): Promise<VolumeView>;
  getVolume(app: string, volumeId: string, ctx: RequestContext): Promise<VolumeView>;
  updateVolume(
    app: string,
    volumeId: string,
    input: UpdateVolumeRequest,
    ctx: RequestContext,
  ): Promise<VolumeView>;
  /** Grows the volume to `sizeGb`; a size that is not larger is a 400. */
  extendVolume(app: string, volumeId: string, sizeGb: number, ctx: RequestContext): Promise<ExtendVolumeView>;
  /** Destroys an unattached volume (an attached one is refused) and answers it as it was last seen. */
  deleteVolume(app: string, volumeId: string, ctx: RequestContext): Promise<VolumeView>;
  /** The volume's snapshots that were not pruned, oldest first. */
  listSnapshots(app: string, volumeId: string, ctx: RequestContext): Promise<VolumeSnapshotView[]>;
  /** Takes an on-demand snapshot and answers it once stored. */
  createSnapshot(app: string, volumeId: string, ctx: RequestContext): Promise<VolumeSnapshotView>;
}
