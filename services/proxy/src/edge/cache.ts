import { createHash } from "node:crypto";
import type { KV } from "@nats-io/kv";

/** How long an entry stays at most, set or not with a TTL: the bucket's max age bounds its size. */
export const EDGE_CACHE_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/** The largest value an app may cache (a NATS message holds it, under the server's max payload). */
export const EDGE_CACHE_VALUE_MAX_BYTES = 512 * 1024;

/** Bytes before each value: when it expires (ms since the epoch, 0 for never), as a float64. */
const HEADER_BYTES = 8;

/**
 * Edge apps' caches in one KV bucket (EDGE_CACHE_BUCKET): an entry's key is `<app>.<sha256 of the app's key>` (the app
 * comes from the runtime, never from the code, and a hashed key cannot name another prefix), its
 * value the expiry then the bytes. NATS 2.9 has no TTL per key, so the expiry is enforced on read
 * (an expired entry is a miss, and deleted); the bucket's max age drops whatever nobody reads.
 */
export class KvEdgeCache {
  constructor(
    private readonly kv: KV,
    private readonly now: () => number = Date.now,
  ) {}

  async get(app: string, key: string): Promise<Uint8Array | undefined> {
    const entry = await this.kv.get(entryKey(app, key));
    if (entry === null || entry.operation !== "PUT" || entry.value.byteLength < HEADER_BYTES)
      return undefined;
    const value = entry.value;
    const expires = new DataView(value.buffer, value.byteOffset, HEADER_BYTES).getFloat64(0);
    if (expires !== 0 && expires <= this.now()) {
      // Only this revision: a newer set meanwhile stays.
      await this.kv.delete(entryKey(app, key), { previousSeq: entry.revision }).catch(() => undefined);
      return undefined;
    }
    return value.subarray(HEADER_BYTES);
  }

  async set(app: string, key: string, value: Uint8Array, ttlSeconds?: number): Promise<void> {
    if (value.byteLength > EDGE_CACHE_VALUE_MAX_BYTES) {
      throw new RangeError(
        `a cached value may be at most ${EDGE_CACHE_VALUE_MAX_BYTES} bytes (got ${value.byteLength})`,
      );
    }
    const stored = new Uint8Array(HEADER_BYTES + value.byteLength);
    const expires = ttlSeconds !== undefined && ttlSeconds > 0 ? this.now() + ttlSeconds * 1000 : 0;
    new DataView(stored.buffer).setFloat64(0, expires);
    stored.set(value, HEADER_BYTES);
    try {
      await this.kv.put(entryKey(app, key), stored);
    } catch (err) {
      // The bucket's max bytes (it discards new values when full): the app is told in its words.
      if (/maximum bytes exceeded/i.test((err as Error).message))
        throw new RangeError(
          "QuotaExceededError: the edge apps' cache is full (its max bytes, every app's entries together)",
          {
            cause: err,
          },
        );
      throw err;
    }
  }

  /** Whether the key had a live entry. */
  async delete(app: string, key: string): Promise<boolean> {
    const had = (await this.get(app, key)) !== undefined;
    await this.kv.delete(entryKey(app, key));
    return had;
  }
}

function entryKey(app: string, key: string): string {
  return `${app}.${createHash("sha256").update(key).digest("base64url")}`;
}
