import { describe, expect, it } from "vitest";
import type { RegistryStore } from "../registry/mod.js";
import type { OrgDirectory } from "./authz.js";
import { admitImage } from "./image-access.js";

const APPS: Record<string, string> = { "acme-web": "acme", redis: "acme", "zeta-web": "zeta" };
const orgs: OrgDirectory = { orgOf: (app) => APPS[app], exists: () => true, limitsOf: () => ({}) };

/** A registry holding only the operator's library/redis:7 (for the squatting case). */
const registry = {
  getManifest: async (repository: string, reference: string) =>
    repository === "library/redis" && reference === "7" ? ({ digest: "sha256:x" } as never) : undefined,
} as unknown as RegistryStore;

const refused = async (org: string, image: string, reg?: RegistryStore) =>
  admitImage(orgs, reg, org, image).then(
    () => undefined,
    (e: Error) => e.message,
  );

describe("admitImage", () => {
  it("refuses another org's app repository as not found, whatever host the ref names", async () => {
    for (const image of ["acme-web:v1", "registry.hangar.internal/acme-web", "ghcr.io/acme-web/x:1"]) {
      expect(await refused("zeta", image, registry)).toBe(`image ${image} not found`);
      expect(await refused("acme", image, registry)).toBeUndefined();
    }
  });

  it("lets the operator's library/x shadow another org's app x, and refuses it otherwise", async () => {
    expect(await refused("zeta", "redis:7", registry)).toBeUndefined();
    expect(await refused("zeta", "redis:6", registry)).toBe("image redis:6 not found");
    expect(await refused("zeta", "redis:7")).toBe("image redis:7 not found");
    expect(await refused("acme", "redis:6", registry)).toBeUndefined();
  });

  it("leaves bases of no app, dir: images and unparsable refs alone", async () => {
    for (const image of ["node:20", "library/node", "dir:/srv/x", "Bad:Ref"]) {
      expect(await refused("zeta", image, registry)).toBeUndefined();
    }
  });
});
