import { patiently } from "@hangar/eventstore";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";

/** Where a KV-backed store keeps its data: its bucket (each store has a default) and the bucket's replicas. */
export interface KvBucketOptions {
  bucket?: string;
  replicas?: number;
}

/**
 * Opens (creating if needed) a KV bucket of current values only (history 1), with `replicas`
 * (default 1) and, with `ttlMs`, entries that expire when untouched that long; with `maxBytes`, a
 * bucket that refuses a put once it holds that many bytes (set when the bucket is created: an
 * existing bucket keeps its own).
 */
export function openKvBucket(
  nc: NatsConnection,
  bucket: string,
  opts: { replicas?: number; ttlMs?: number; maxBytes?: number } = {},
): Promise<KV> {
  // Services open their buckets at start, at once on a platform that starts them together.
  return patiently(() =>
    new Kvm(nc).create(bucket, {
      history: 1,
      replicas: opts.replicas ?? 1,
      ...(opts.ttlMs !== undefined ? { ttl: opts.ttlMs } : {}),
      ...(opts.maxBytes !== undefined ? { max_bytes: opts.maxBytes } : {}),
    }),
  );
}
