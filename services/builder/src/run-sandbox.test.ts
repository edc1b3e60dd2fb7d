import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { leftMountPoints, mountPoints } from "./run-sandbox.js";

describe("a RUN step's mount points", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "run-sandbox-"));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it("are each mount's destination and the folders leading to it, deepest first", () => {
    const spec = {
      mounts: [{ destination: "/proc" }, { destination: "/dev/pts" }, { destination: "/run/hangar-init" }],
    };
    const points = mountPoints(spec);
    expect(new Set(points)).toEqual(new Set(["proc", "dev", "dev/pts", "run", "run/hangar-init"]));
    expect(points.indexOf("run/hangar-init")).toBeLessThan(points.indexOf("run"));
    expect(points.indexOf("dev/pts")).toBeLessThan(points.indexOf("dev"));
  });

  it("are left out of the layer only when crun made them and the step left them empty", async () => {
    // crun made run/ and the empty bind target in it, and an empty proc/.
    await mkdir(join(root, "run"));
    await writeFile(join(root, "run/hangar-init"), "");
    await mkdir(join(root, "proc"));
    // The step wrote into dev/, and the image already had etc/resolv.conf.
    await mkdir(join(root, "dev"));
    await writeFile(join(root, "dev/made-by-step"), "x");
    await mkdir(join(root, "etc"));
    await writeFile(join(root, "etc/resolv.conf"), "");
    const existed = new Map([
      ["run/hangar-init", false],
      ["etc/resolv.conf", true],
      ["proc", false],
      ["dev", false],
      ["run", false],
      ["etc", true],
      ["sys", false],
    ]);
    expect(await leftMountPoints(root, existed)).toEqual(new Set(["run/hangar-init", "proc", "run"]));
  });
});
