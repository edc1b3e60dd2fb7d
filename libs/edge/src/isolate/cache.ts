/** fly.cache: the app's cache, kept by the host (EdgeHost.cache*), strings and bytes with a TTL. */
import { callHost } from "./host.js";
import { TextDecoder, TextEncoder } from "./text.js";

function cacheKey(key: unknown): string {
  if (typeof key !== "string" || key.length === 0) throw new TypeError("a cache key is a non-empty string");
  return key;
}

function cacheValue(value: unknown): Uint8Array {
  if (typeof value === "string") return new TextEncoder().encode(value);
  if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0));
  if (ArrayBuffer.isView(value))
    return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  throw new TypeError("a cache value is a string, an ArrayBuffer or a typed array");
}

function ttlOf(options: unknown): number | undefined {
  const ttl = typeof options === "object" && options !== null ? (options as { ttl?: unknown }).ttl : options;
  if (ttl === undefined || ttl === null) return undefined;
  if (typeof ttl !== "number" || !(ttl > 0))
    throw new TypeError("a cache TTL is a number of seconds above 0");
  return ttl;
}

async function getBytes(key: string): Promise<Uint8Array | null> {
  const value = (await callHost("cacheGet", cacheKey(key))) as Uint8Array | undefined;
  return value ?? null;
}

export const cache = {
  /** The value as an ArrayBuffer, or null. */
  async get(key: string): Promise<ArrayBuffer | null> {
    const bytes = await getBytes(key);
    return bytes === null
      ? null
      : (bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  },
  /** The value as UTF-8 text, or null. */
  async getString(key: string): Promise<string | null> {
    const bytes = await getBytes(key);
    return bytes === null ? null : new TextDecoder().decode(bytes);
  },
  /** Sets the value; `ttl` (seconds, or { ttl }) makes it expire. */
  async set(key: string, value: unknown, ttl?: number | { ttl?: number }): Promise<boolean> {
    const seconds = ttlOf(ttl);
    await callHost("cacheSet", cacheKey(key), cacheValue(value), ...(seconds === undefined ? [] : [seconds]));
    return true;
  },
  /** Deletes the value; whether there was one. */
  async del(key: string): Promise<boolean> {
    return (await callHost("cacheDelete", cacheKey(key))) as boolean;
  },
};
