import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CgroupFreezer, cgroupScope } from "../cgroup.js";
import { CgroupPart } from "./cgroup.js";
import { runSetup, teardownOf } from "./testing.js";

let stateDir: string;
const logger = { warn: () => {} };
// Creating cgroups needs root and a freezer; elsewhere the test of "signals" still runs.
const found = process.getuid?.() === 0 ? CgroupFreezer.detect("probe", {}) : { reason: "not root" };

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "cgroup-part-"));
});

afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

describe("CgroupPart", () => {
  it("told to use signals, gives a run no cgroup and says why", async () => {
    const part = new CgroupPart(stateDir, "signals", logger);
    const run = runSetup(stateDir, "m1");
    await part.prepare(run);
    expect(run.cgroup).toBeNull();
    expect(part.suspendInfo()).toEqual({ mode: "signals", reason: "the driver was told to use signals" });
    await part.release(teardownOf(run));
  });

  it.skipIf(!("freezer" in found))(
    "creates the machine's cgroup for a run and removes it on release",
    async () => {
      const part = new CgroupPart(stateDir, "auto", logger);
      const run = runSetup(stateDir, "m1");
      await part.prepare(run);
      expect(run.cgroup?.exists()).toBe(true);
      expect(run.cgroup?.path).toContain(cgroupScope(stateDir));
      expect(part.recorded(run.cgroup?.ref)?.path).toBe(run.cgroup?.path);
      await part.release(teardownOf(run));
      expect(run.cgroup?.exists()).toBe(false);
      expect(part.recorded(run.cgroup?.ref)).toBeNull();
    },
  );
});
