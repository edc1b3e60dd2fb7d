import { createReadStream } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { VOLUME_SNAPSHOTS_BUCKET } from "@hangar/domain";
import { hashFile, openObjectBucket, runTool as run } from "@hangar/oci";
import {
  deleteSnapshotObject,
  type HostVolumeSnapshotReply,
  snapshotObjectName as objectName,
} from "@hangar/service";
import type { NatsConnection } from "@nats-io/transport-node";
import { checkSnapshotId, checkVolumeId, VolumeDiskError, type VolumeDisks } from "./disk.js";

/** Object store chunks: large enough to keep a GB image's metadata small. */
const CHUNK_SIZE = 1024 * 1024;

type ObjectStore = Awaited<ReturnType<typeof openObjectBucket>>;

/** The object of a snapshot (`<volume_id>/<snapshot_id>`), once both ids are checked. */
function snapshotObjectName(volumeId: string, snapshotId: string): string {
  checkVolumeId(volumeId);
  checkSnapshotId(snapshotId);
  return objectName(volumeId, snapshotId);
}

/**
 * Volume snapshots in the JetStream object store: a consistent copy of the image (see
 * VolumeDisks.copyConsistent), zstd-compressed and chunked by the object store, with its raw size,
 * digest and freeze time as the object's metadata.
 */
export class SnapshotStore {
  constructor(private readonly bucket: ObjectStore) {}

  /** Opens (creating if missing) the snapshots bucket. */
  static async open(nc: NatsConnection, opts: { replicas?: number } = {}): Promise<SnapshotStore> {
    return new SnapshotStore(await openObjectBucket(nc, VOLUME_SNAPSHOTS_BUCKET, opts));
  }

  /** The stored snapshot, or null when there is none (or only a deleted one). */
  async info(volumeId: string, snapshotId: string): Promise<HostVolumeSnapshotReply | null> {
    const info = await this.bucket.info(snapshotObjectName(volumeId, snapshotId));
    if (!info || info.deleted) return null;
    const meta = info.metadata ?? {};
    return {
      size: Number(meta.size ?? 0),
      stored_size: info.size,
      digest: meta.digest ?? "",
      freeze_ms: Number(meta.freeze_ms ?? 0),
    };
  }

  /**
   * Takes a snapshot of volume `volumeId` on this host, unless one named `snapshotId` is stored
   * already (the command is idempotent). The copy goes through a temp file beside the images, removed
   * whatever happens; the object store only publishes an object once all its chunks are in.
   */
  async take(disks: VolumeDisks, volumeId: string, snapshotId: string): Promise<HostVolumeSnapshotReply> {
    const name = snapshotObjectName(volumeId, snapshotId);
    const stored = await this.info(volumeId, snapshotId);
    if (stored) return stored;
    const tmp = join(disks.opts.dir, `.${volumeId}.${snapshotId}.tmp-snapshot`);
    const compressed = `${tmp}.zst`;
    try {
      const { freezeMs } = await disks.copyConsistent(volumeId, tmp);
      // Hashed while zstd compresses (two cores), and stored once both are done, so the object is
      // published with its metadata in one step: no reader ever sees a snapshot without its digest.
      const [{ digest, size }] = await Promise.all([
        hashFile(tmp),
        run("zstd", ["-q", "-f", "-o", compressed, tmp]),
      ]);
      const metadata = { size: String(size), digest, freeze_ms: String(Math.round(freezeMs)) };
      const data = Readable.toWeb(createReadStream(compressed)) as ReadableStream<Uint8Array>;
      await this.bucket.put({ name, metadata, options: { max_chunk_size: CHUNK_SIZE } }, data);
      const info = await this.info(volumeId, snapshotId);
      if (!info) throw new VolumeDiskError(`snapshot ${snapshotId} was not stored`, "internal");
      return info;
    } finally {
      await rm(tmp, { force: true });
      await rm(compressed, { force: true });
    }
  }

  /** Makes volume `volumeId` of `bytes` on this host from a stored snapshot; `not_found` when there is none. */
  async restore(
    disks: VolumeDisks,
    volumeId: string,
    bytes: number,
    from: { volume_id: string; snapshot_id: string },
  ): Promise<void> {
    const name = snapshotObjectName(from.volume_id, from.snapshot_id);
    const result = await this.bucket.get(name);
    if (!result)
      throw new VolumeDiskError(
        `snapshot ${from.snapshot_id} of volume ${from.volume_id} is not in ${VOLUME_SNAPSHOTS_BUCKET}`,
        "not_found",
      );
    await disks.restore(volumeId, bytes, Readable.fromWeb(result.data as WebReadableStream));
    const error = await result.error;
    if (error) {
      await disks.remove(volumeId);
      throw new VolumeDiskError(`reading snapshot ${from.snapshot_id} failed: ${error.message}`, "internal");
    }
  }

  /** Deletes a stored snapshot; a missing one is no error. */
  async delete(volumeId: string, snapshotId: string): Promise<void> {
    await deleteSnapshotObject(this.bucket, volumeId, snapshotId);
  }
}
