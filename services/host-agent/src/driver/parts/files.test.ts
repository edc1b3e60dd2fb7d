import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { MachineFile } from "../types.js";
import { FilesPart } from "./files.js";
import { RootfsPart } from "./rootfs.js";
import { runSetup, teardownOf } from "./testing.js";

// A dir: machine's root: the host's /usr, /etc, ... and its app folder bound in (an image's overlay
// is written the same way: test/sandbox.int.test.ts).
let stateDir: string;
let appDir: string;

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "files-part-"));
  appDir = await mkdtemp(join(tmpdir(), "files-part-app-"));
  await writeFile(join(appDir, "server.js"), "// the app\n");
});

afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
  await rm(appDir, { recursive: true, force: true });
});

const file = (guestPath: string, text: string, mode = 0o644): MachineFile => ({
  guestPath,
  content: new TextEncoder().encode(text),
  mode,
});

/** Prepares a dir: machine's root filesystem, then its files. */
async function prepare(id: string, files: MachineFile[]) {
  const rootfs = new RootfsPart(stateDir);
  const run = runSetup(stateDir, id, { org: "acme", cwd: appDir, files });
  await run.dir.prepareRun();
  await rootfs.prepare(run);
  const release = () => rootfs.release(teardownOf(run));
  try {
    await new FilesPart().prepare(run);
  } catch (err) {
    await release();
    throw err;
  }
  return { run, release };
}

describe.runIf(process.getuid?.() === 0)("FilesPart", () => {
  it("writes the files into the machine's root, owned by its root in its range", async () => {
    const { run, release } = await prepare("m1", [file("/config/app.json", "{}", 0o640)]);
    try {
      const written = join(run.rootfs as string, "config", "app.json");
      expect(await readFile(written, "utf8")).toBe("{}");
      const st = await stat(written);
      expect([st.mode & 0o777, st.uid, st.gid]).toEqual([0o640, run.range?.hostId, run.range?.hostId]);
    } finally {
      await release();
    }
  });

  it("never writes into the host folders a dir: machine sees: its /etc, its app folder", async () => {
    const marker = `hangar-files-part-${process.pid}`;
    await expect(prepare("m2", [file(`/etc/${marker}`, "x")])).rejects.toThrow(
      `file /etc/${marker}: /etc is a folder of the host, not of the machine`,
    );
    expect(existsSync(join("/etc", marker))).toBe(false);
    await expect(prepare("m3", [file(`${appDir}/injected.js`, "x")])).rejects.toThrow(
      "is a folder of the host, not of the machine",
    );
    expect(await readdir(appDir)).toEqual(["server.js"]);
  });
});

describe("FilesPart, the image's user", () => {
  it("refuses a user outside the machine's id range, which would name a host id of another range", async () => {
    const setup = (user: { uid: number; gid: number }) =>
      ({
        spec: { files: [file("/etc/app.conf", "x")] },
        rootfs: stateDir,
        range: { hostId: 100_000, size: 65_536 },
        user,
      }) as unknown as Parameters<FilesPart["prepare"]>[0];
    await expect(new FilesPart().prepare(setup({ uid: 70_000, gid: 0 }))).rejects.toThrow(
      /user 70000:0 is outside the machine's 65536 ids/,
    );
    await expect(new FilesPart().prepare(setup({ uid: 0, gid: 65_536 }))).rejects.toThrow(/outside/);
  });
});
