import type { ImageRegistry, LayerStore } from "@hangar/oci";
import { describe, expect, it } from "vitest";
import { ForeignImageError, ImagePuller } from "./images.js";

/**
 * A puller over a registry that knows only which manifests exist: resolve() is where a pull would
 * start fetching, so it records the ref and stops there.
 */
function puller(manifests: string[]): { puller: ImagePuller; resolved: string[] } {
  const resolved: string[] = [];
  const registry = {
    getManifest: async (repository: string, reference: string) =>
      manifests.includes(`${repository}:${reference}`)
        ? { digest: "sha256:0", mediaType: "", bytes: new Uint8Array() }
        : undefined,
    resolve: async (ref: string) => {
      resolved.push(ref);
      throw new Error("resolved");
    },
  } as unknown as ImageRegistry;
  return {
    puller: new ImagePuller({ registry, layers: {} as LayerStore, logger: { info() {}, warn() {} } }),
    resolved,
  };
}

const apps: Record<string, string> = { "a-app": "org-a", "b-app": "org-b", redis: "org-a" };
const ownerB = { org: "org-b", orgOf: async (app: string) => apps[app] };

describe("ImagePuller with the machine's org", () => {
  it("refuses another org's app image as not found, before any fetch", async () => {
    for (const ref of ["a-app:v1", "a-app/sub:v1", "registry.hangar.internal/a-app:v1"]) {
      const p = puller([]);
      await expect(p.puller.pull(ref, ownerB)).rejects.toThrow(ForeignImageError);
      await expect(p.puller.pull(ref, ownerB)).rejects.toThrow(`image ${ref} not found`);
      expect(p.resolved).toEqual([]);
    }
  });

  it("pulls its own org's images and bases of no app", async () => {
    for (const ref of ["b-app:v1", "library/node:20", "node:20"]) {
      const p = puller([]);
      await expect(p.puller.pull(ref, ownerB)).rejects.toThrow("resolved");
      expect(p.resolved).toEqual([ref]);
    }
  });

  it("refuses a squatted official name unless the operator's library image exists", async () => {
    const squatted = puller([]);
    await expect(squatted.puller.pull("redis:7", ownerB)).rejects.toThrow(ForeignImageError);
    const official = puller(["library/redis:7"]);
    await expect(official.puller.pull("redis:7", ownerB)).rejects.toThrow("resolved");
    expect(official.resolved).toEqual(["redis:7"]);
  });

  it("checks nothing without an owner (a machine of no known org)", async () => {
    const p = puller([]);
    await expect(p.puller.pull("a-app:v1")).rejects.toThrow("resolved");
  });
});
