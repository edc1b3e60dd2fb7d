/**
 * The app's cache, shared by every worker of the edge and never by two apps (`fly.cache` of the
 * runtime, scoped by the host to the app). This module gives it the old runtime's shape.
 */

/** What the runtime puts at `fly.cache`; values may come back as bytes or as text. */
interface RuntimeCache {
  get(key: string): Promise<unknown>;
  set(key: string, value: string | Uint8Array, ttlSeconds?: number): Promise<unknown>;
  del(key: string): Promise<unknown>;
}

export type CacheValue = string | ArrayBuffer | ArrayBufferView;

/** `set`'s options: a TTL in seconds, or `{ ttl }`. */
export type CacheSetOptions = number | { ttl?: number };

function runtimeCache(): RuntimeCache {
  const fly = (globalThis as { fly?: { cache?: RuntimeCache } }).fly;
  if (!fly?.cache) throw new Error("fly.cache is not available: the cache exists inside the edge runtime");
  return fly.cache;
}

function toBytes(value: CacheValue): Uint8Array {
  if (typeof value === "string") return new TextEncoder().encode(value);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function ttlOf(options: CacheSetOptions | undefined): number | undefined {
  const ttl = typeof options === "number" ? options : options?.ttl;
  if (ttl === undefined) return undefined;
  if (!Number.isFinite(ttl) || ttl <= 0)
    throw new RangeError(`cache: ttl ${ttl} is not a positive number of seconds`);
  return ttl;
}

/** A key's bytes, or null when it is not there or expired. */
async function get(key: string): Promise<ArrayBuffer | null> {
  const value = await runtimeCache().get(key);
  if (value === null || value === undefined) return null;
  const bytes = toBytes(value as CacheValue);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** A key's value as UTF-8 text, or null. */
async function getString(key: string): Promise<string | null> {
  const value = await runtimeCache().get(key);
  if (value === null || value === undefined) return null;
  return typeof value === "string" ? value : new TextDecoder().decode(toBytes(value as CacheValue));
}

/** Stores a value, for `ttl` seconds when given; resolves true when stored. */
async function set(key: string, value: CacheValue, options?: CacheSetOptions): Promise<boolean> {
  const ttl = ttlOf(options);
  await runtimeCache().set(key, toBytes(value), ttl);
  return true;
}

/** Removes a key; resolves whether it was there. */
async function del(key: string): Promise<boolean> {
  return Boolean(await runtimeCache().del(key));
}

export const cache = { get, getString, set, del };

export default cache;
