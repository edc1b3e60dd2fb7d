import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RANGE_BASE, RANGE_SIZE } from "../id-ranges.js";
import { mountPoints, rootfsPaths } from "../rootfs.js";
import { RootfsPart } from "./rootfs.js";
import { runSetup, teardownOf } from "./testing.js";

// Mounting an image's overlay needs its layers: test/sandbox.int.test.ts runs that end to end.
let stateDir: string;
let appDir: string;

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "rootfs-part-"));
  appDir = await mkdtemp(join(tmpdir(), "rootfs-part-app-"));
  await writeFile(join(appDir, "server.js"), "// the app\n");
});

afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
  await rm(appDir, { recursive: true, force: true });
});

describe("RootfsPart", () => {
  it("gives a dir: machine a host view in a 0700 folder of its org's range, and releases it without touching the app", async () => {
    const part = new RootfsPart(stateDir);
    const run = runSetup(stateDir, "m1", { org: "acme", cwd: appDir });
    await run.dir.prepareRun();
    await part.prepare(run);
    const hostId = run.range?.hostId ?? 0;
    expect(run.range?.size).toBe(RANGE_SIZE);
    expect(hostId >= RANGE_BASE && (hostId - RANGE_BASE) % RANGE_SIZE === 0).toBe(true);
    const { home, target } = rootfsPaths(run.dir.path);
    expect(run.rootfs).toBe(target);
    const folder = await stat(home);
    expect([folder.mode & 0o777, folder.uid]).toEqual([0o700, hostId]);
    const mounts = mountPoints();
    expect(mounts).toContain(join(target, "usr"));
    expect(mounts).toContain(join(target, appDir));
    expect(await readFile(join(target, appDir, "server.js"), "utf8")).toBe("// the app\n");

    await part.release(teardownOf(run));
    expect(mountPoints().filter((p) => p.startsWith(home))).toEqual([]);
    await expect(stat(home)).rejects.toMatchObject({ code: "ENOENT" });
    expect(await readFile(join(appDir, "server.js"), "utf8")).toBe("// the app\n");
  });

  it("gives machines of one org one range and another org another, kept across agents of the host", async () => {
    const run = (id: string, org: string) => runSetup(stateDir, id, { org, cwd: appDir });
    const first = new RootfsPart(stateDir);
    const a = run("a1", "acme");
    const b = run("b1", "other");
    for (const r of [a, b]) {
      await r.dir.prepareRun();
      await first.prepare(r);
    }
    const again = new RootfsPart(stateDir);
    const a2 = run("a2", "acme");
    await a2.dir.prepareRun();
    await again.prepare(a2);
    expect(a.range).toEqual(a2.range);
    expect(b.range?.hostId).not.toBe(a.range?.hostId);
    // A second state folder on the same host (another agent) sees the same ranges.
    const elsewhere = await mkdtemp(join(tmpdir(), "rootfs-part-b-"));
    const c = runSetup(elsewhere, "c1", { org: "other", cwd: appDir });
    await c.dir.prepareRun();
    await new RootfsPart(elsewhere).prepare(c);
    expect(c.range).toEqual(b.range);
    await new RootfsPart(elsewhere).release(teardownOf(c));
    await rm(elsewhere, { recursive: true, force: true });
    for (const r of [a, b, a2]) await again.release(teardownOf(r));
  });

  it("releases a machine that never prepared", async () => {
    const part = new RootfsPart(stateDir);
    const run = runSetup(stateDir, "m2");
    await mkdir(run.dir.path, { recursive: true });
    await part.release(teardownOf(run));
  });
});
