import {
  type HostVolumeCreateRequest,
  type HostVolumeDeleteRequest,
  type HostVolumeExtendRequest,
  type HostVolumeSnapshotReply,
  type HostVolumeSnapshotRequest,
  type HostVolumeStatReply,
  type HostVolumeStatRequest,
  serveCommands,
  subjects,
  type VolumeStat,
} from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { z } from "zod";
import { checkSnapshotId, checkVolumeId, GIB, VolumeDiskError, type VolumeDisks } from "./disk.js";
import type { VolumeMetrics } from "./metrics.js";
import type { SnapshotStore } from "./snapshots.js";

/** The largest volume a host makes, as Fly's (500 GB). */
const MAX_SIZE_GB = 500;

const sizeGb = z.number().int().min(1).max(MAX_SIZE_GB);
const volumeId = z.string().refine(validId(checkVolumeId), "a volume id (vol_...)");
const snapshotId = z.string().refine(validId(checkSnapshotId), "a snapshot id (vs_...)");

const schemas = {
  create: z.object({
    volume_id: volumeId,
    app: z.string().min(1),
    size_gb: sizeGb,
    snapshot: z.object({ volume_id: volumeId, snapshot_id: snapshotId }).optional(),
  }),
  extend: z.object({ volume_id: volumeId, size_gb: sizeGb }),
  snapshot: z.object({ volume_id: volumeId, snapshot_id: snapshotId }),
  delete: z.object({ volume_id: volumeId }),
  stat: z.object({ volume_ids: z.array(volumeId).max(1000) }),
};

function validId(check: (id: string) => void): (id: string) => boolean {
  return (id) => {
    try {
      check(id);
      return true;
    } catch {
      return false;
    }
  };
}

/** Parses a request, or refuses it as `invalid_argument` naming what is wrong. */
function parse<T>(schema: z.ZodType<T>, payload: unknown): T {
  const result = schema.safeParse(payload);
  if (!result.success)
    throw new VolumeDiskError(
      result.error.issues.map((i) => `${i.path.join(".") || "request"}: ${i.message}`).join("; "),
      "invalid_argument",
    );
  return result.data;
}

export interface VolumeCommandsOptions {
  nc: NatsConnection;
  hostId: string;
  disks: VolumeDisks;
  snapshots: SnapshotStore;
  metrics: VolumeMetrics;
  logger: Pick<Logger, "error" | "info">;
}

/**
 * Serves the volume service's commands to this host (`cmd.host.<id>.volume.*`): make, grow,
 * snapshot, delete and stat the host's volume disks. Each is idempotent, so the volume service may
 * ask again after a crash; commands on one volume run one at a time. Only the volume service may
 * send them (nats-permissions.ts).
 */
export function serveVolumeCommands(o: VolumeCommandsOptions): Subscription[] {
  const { disks, snapshots, metrics } = o;
  const queue = `host-${o.hostId}`;
  const serve = <Q, R>(verb: string, handle: (req: Q) => Promise<R>) =>
    serveCommands<Q, R>(o.nc, subjects.hostCommand(o.hostId, `volume.${verb}`), queue, handle, (err) =>
      o.logger.error({ err }, `volume.${verb} failed`),
    );
  return [
    serve<HostVolumeCreateRequest, VolumeStat>("create", async (payload) => {
      const req = parse(schemas.create, payload);
      return disks.serial(req.volume_id, async () => {
        const bytes = req.size_gb * GIB;
        if (req.snapshot) await snapshots.restore(disks, req.volume_id, bytes, req.snapshot);
        else await disks.create(req.volume_id, bytes);
        o.logger.info({ volume_id: req.volume_id, app: req.app, size_gb: req.size_gb }, "volume disk made");
        return disks.stat(req.volume_id);
      });
    }),
    serve<HostVolumeExtendRequest, VolumeStat & { needs_restart: boolean }>("extend", async (payload) => {
      const req = parse(schemas.extend, payload);
      return disks.serial(req.volume_id, async () => {
        const { online } = await disks.extend(req.volume_id, req.size_gb * GIB);
        return { ...(await disks.stat(req.volume_id)), needs_restart: !online };
      });
    }),
    serve<HostVolumeSnapshotRequest, HostVolumeSnapshotReply>("snapshot", async (payload) => {
      const req = parse(schemas.snapshot, payload);
      return disks.serial(req.volume_id, () =>
        metrics.timeSnapshot(() => snapshots.take(disks, req.volume_id, req.snapshot_id)),
      );
    }),
    serve<HostVolumeDeleteRequest, { deleted: true }>("delete", async (payload) => {
      const req = parse(schemas.delete, payload);
      await disks.serial(req.volume_id, () => disks.remove(req.volume_id));
      o.logger.info({ volume_id: req.volume_id }, "volume disk deleted");
      return { deleted: true };
    }),
    serve<HostVolumeStatRequest, HostVolumeStatReply>("stat", async (payload) => {
      const req = parse(schemas.stat, payload);
      const reply: HostVolumeStatReply = {};
      for (const id of req.volume_ids) if (disks.exists(id)) reply[id] = await disks.stat(id);
      return reply;
    }),
  ];
}
