import { patiently } from "@hangar/eventstore";
import { type ObjectStore, Objm, StorageType, setSha256Backend } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";

// Every Object Store put and get hashes its content with SHA-256; the library's default is a pure-JS
// hash (~50 MB/s here), node:crypto's is ~900 MB/s, and it was what bounded a layer's put and read.
// Process-wide, and the same digest either way; runService sets it too, for services that use
// Object Stores without this module.
setSha256Backend("native");

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
  // Services open their buckets at start, at once on a platform that starts them together.
  return patiently(() =>
    new Objm(nc).create(name, {
      storage: StorageType.File,
      replicas: opts.replicas ?? 1,
      ...(opts.maxBytes !== undefined ? { max_bytes: opts.maxBytes } : {}),
    }),
  );
}
