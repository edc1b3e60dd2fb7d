/** The object of a volume snapshot in the VOLUME_SNAPSHOTS bucket: `<volume_id>/<snapshot_id>`. */
export function snapshotObjectName(volumeId: string, snapshotId: string): string {
  return `${volumeId}/${snapshotId}`;
}

/** The part of an Object Store a snapshot's deletion needs. */
export interface SnapshotObjects {
  info(name: string): Promise<{ deleted: boolean } | null>;
  delete(name: string): Promise<unknown>;
}

/** Deletes a stored snapshot's object; a missing (or deleted) one is no error. */
export async function deleteSnapshotObject(
  bucket: SnapshotObjects,
  volumeId: string,
  snapshotId: string,
): Promise<void> {
  const name = snapshotObjectName(volumeId, snapshotId);
  const info = await bucket.info(name);
  if (info && !info.deleted) await bucket.delete(name);
}
