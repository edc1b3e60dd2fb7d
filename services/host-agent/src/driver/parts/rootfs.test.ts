import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RootfsPart } from "./rootfs.js";
import { runSetup, teardownOf } from "./testing.js";

// Mounting an image's overlay needs its layers: test/sandbox.int.test.ts runs that end to end.
let stateDir: string;

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "rootfs-part-"));
});

afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

describe("RootfsPart", () => {
  it("mounts nothing for a machine that is not sandboxed, and releases a machine that has none", async () => {
    const part = new RootfsPart();
    const run = runSetup(stateDir, "m1");
    await run.dir.prepareRun();
    await part.prepare(run);
    expect(run.rootfs).toBeNull();
    await part.release(teardownOf(run));
  });
});
