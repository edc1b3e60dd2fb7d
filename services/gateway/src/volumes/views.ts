import type { Volume, VolumeSnapshot } from "@hangar/domain";
import type { VolumeStat } from "@hangar/service";
import type { VolumeSnapshotView, VolumeView } from "./api.js";

/** The filesystem figures of a volume whose host did not answer (in time, or at all). */
const NO_STAT = { block_size: 0, blocks: 0, blocks_free: 0, blocks_avail: 0 } as const;

/**
 * A volume as Fly's API shows it: the VOLUMES stream's state, with the filesystem figures its host
 * reported (zeros when it did not), never its org, host bookkeeping or snapshots.
 */
export function toVolumeView(
  v: Volume,
  stat: Pick<VolumeStat, keyof typeof NO_STAT> | undefined,
): VolumeView {
  const fs = stat ?? NO_STAT;
  return {
    id: v.id,
    name: v.name,
    state: v.state,
    size_gb: v.size_gb,
    region: v.region,
    // A host is a zone here.
    zone: v.host_id,
    encrypted: false,
    fstype: v.fstype,
    created_at: v.created_at,
    snapshot_retention: v.snapshot_retention,
    auto_backup_enabled: v.auto_backup_enabled,
    attached_machine_id: v.attached_machine_id,
    attached_alloc_id: v.attached_alloc_id,
    block_size: fs.block_size,
    blocks: fs.blocks,
    blocks_free: fs.blocks_free,
    blocks_avail: fs.blocks_avail,
  };
}

/** A snapshot as Fly's API shows it: `status` is its state ("creating", "created" or "failed"). */
export function toSnapshotView(s: VolumeSnapshot): VolumeSnapshotView {
  return {
    id: s.id,
    size: s.size,
    digest: s.digest,
    created_at: s.created_at,
    status: s.state,
    retention_days: s.retention_days,
    type: s.type,
  };
}
