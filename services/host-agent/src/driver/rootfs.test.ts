import { describe, expect, it } from "vitest";
import { ROOTFS_MOUNT_BASE, rootfsMountRoot, rootfsPaths } from "./rootfs.js";

describe("rootfsPaths", () => {
  it("mounts under the traversable base, in the machine's own folder, found again from the machine folder alone", () => {
    const paths = rootfsPaths("/root/.hangar/machines/m1");
    expect(paths.home).toBe(`${rootfsMountRoot("/root/.hangar/machines")}/m1`);
    expect(paths.target).toBe(`${paths.home}/root`);
    expect(paths.target).toMatch(new RegExp(`^${ROOTFS_MOUNT_BASE}/[0-9a-f]{16}/m1/root$`));
    // The same folder written another way is the same mount point; writable layers stay in the folder.
    expect(rootfsPaths("/root/.hangar/machines/./m1/").target).toBe(paths.target);
    expect(paths.upper).toBe("/root/.hangar/machines/m1/upper");
  });

  it("keeps machines of different state folders apart", () => {
    expect(rootfsPaths("/a/state/m1").target).not.toBe(rootfsPaths("/b/state/m1").target);
  });
});
