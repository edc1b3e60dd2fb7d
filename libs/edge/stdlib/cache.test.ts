import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cache } from "./cache.js";

// The runtime's fly.cache as the edge's hosts keep it: bytes by key, with a TTL. Here a map stands in
// for it (this file tests the library's shape over it; the runtime's cache has tests of its own).
const stored = new Map<string, { value: Uint8Array; ttl: number | undefined }>();
const runtimeCache = {
  get: async (key: string) => stored.get(key)?.value,
  set: async (key: string, value: Uint8Array, ttl?: number) => {
    stored.set(key, { value, ttl });
  },
  del: async (key: string) => stored.delete(key),
};
const scope = globalThis as { fly?: unknown };

beforeEach(() => {
  stored.clear();
  scope.fly = { cache: runtimeCache };
});
afterEach(() => {
  delete scope.fly;
});

describe("cache", () => {
  it("stores text and bytes, reads them back as text or bytes, with the TTL given either way", async () => {
    expect(await cache.set("greeting", "héllo", 60)).toBe(true);
    expect(stored.get("greeting")?.ttl).toBe(60);
    expect(await cache.getString("greeting")).toBe("héllo");
    await cache.set("bytes", new Uint8Array([1, 2, 3]), { ttl: 5 });
    expect(stored.get("bytes")?.ttl).toBe(5);
    expect([...new Uint8Array((await cache.get("bytes")) as ArrayBuffer)]).toEqual([1, 2, 3]);
    await cache.set("forever", new Uint8Array([9]).buffer);
    expect(stored.get("forever")?.ttl).toBeUndefined();
  });

  it("answers null for a missing key, and del says whether the key was there", async () => {
    expect(await cache.get("missing")).toBeNull();
    expect(await cache.getString("missing")).toBeNull();
    await cache.set("k", "v");
    expect(await cache.del("k")).toBe(true);
    expect(await cache.del("k")).toBe(false);
  });

  it("refuses a TTL that is not a positive number of seconds", async () => {
    await expect(cache.set("k", "v", 0)).rejects.toThrow(/not a positive number/);
    await expect(cache.set("k", "v", { ttl: Number.NaN })).rejects.toThrow(/not a positive number/);
  });

  it("says clearly that it needs the edge runtime when there is no fly.cache", async () => {
    delete scope.fly;
    await expect(cache.get("k")).rejects.toThrow(/inside the edge runtime/);
  });
});
