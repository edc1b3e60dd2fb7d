import { patiently } from "@hangar/eventstore";
import type { BlobStore, Digest } from "@hangar/oci";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";

/** The default KV bucket of the layer cache. */
export const DEFAULT_CACHE_BUCKET = "hangar-build-cache";

/** A layer a step made: what the image manifest and config need to name it. */
export interface LayerRef {
  digest: Digest;
  diffId: Digest;
  size: number;
}

/** What the cache remembers of a step: its layer, or null when it changed nothing on disk. */
export interface CacheEntry {
  layer: LayerRef | null;
  /** When the entry was written (ms since the epoch). */
  created: number;
}

/**
 * The layer cache: step key -> the layer the step made. Entries live in a KV bucket, layers in the
 * BlobStore; an entry whose blob is gone counts as a miss.
 */
export class LayerCache {
  private constructor(
    private readonly kv: KV,
    private readonly blobs: BlobStore,
  ) {}

  static async open(
    nc: NatsConnection,
    blobs: BlobStore,
    opts: { bucket?: string; replicas?: number } = {},
  ): Promise<LayerCache> {
    const kv = await patiently(() =>
      new Kvm(nc).create(opts.bucket ?? DEFAULT_CACHE_BUCKET, {
        history: 1,
        replicas: opts.replicas ?? 1,
      }),
    );
    return new LayerCache(kv, blobs);
  }

  /** The entry of a step key, or undefined on a miss. */
  async get(key: string): Promise<CacheEntry | undefined> {
    const e = await this.kv.get(key);
    if (e === null || e.operation !== "PUT") return undefined;
    const entry = e.json<CacheEntry>();
    if (entry.layer !== null && !(await this.blobs.has(entry.layer.digest))) return undefined;
    return entry;
  }

  async put(key: string, layer: LayerRef | null): Promise<void> {
    await this.kv.put(key, JSON.stringify({ layer, created: Date.now() } satisfies CacheEntry));
  }
}
