import { type ObjectStore, Objm, StorageType } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";

/**
 * Opens an Object Store bucket on disk, creating it with `replicas` (default 1) if it is missing.
 * Every service that may be first to open a shared bucket (blobs, build contexts) opens it through
 * here, so the bucket gets the same settings whoever creates it.
 */
export function openObjectBucket(
  nc: NatsConnection,
  name: string,
  opts: { replicas?: number; maxBytes?: number } = {},
): Promise<ObjectStore> {
  return new Objm(nc).create(name, {
    storage: StorageType.File,
    replicas: opts.replicas ?? 1,
    ...(opts.maxBytes !== undefined ? { max_bytes: opts.maxBytes } : {}),
  });
}
