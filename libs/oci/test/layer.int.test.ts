import { execFileSync } from "node:child_process";
import { createReadStream } from "node:fs";
import {
  chmod,
  chown,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gunzipSync } from "node:zlib";
import tar, { type Pack } from "tar-stream";

type TarHeader = Parameters<Pack["entry"]>[0];

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyLayer, createLayer, digestOf, LayerEntryError } from "../src/mod.js";

// Needs root: whiteouts are 0/0 character devices and the opaque marker is a trusted.* xattr.
let work: string;
const mtime = new Date("2024-01-02T03:04:05Z");

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "oci-layer-"));
});
afterAll(() => rm(work, { recursive: true, force: true }));

async function listTar(gz: Buffer): Promise<TarHeader[]> {
  const extract = tar.extract();
  const headers: TarHeader[] = [];
  const done = (async () => {
    for await (const entry of extract) {
      headers.push(entry.header);
      entry.resume();
    }
  })();
  extract.end(gunzipSync(gz));
  await done;
  return headers;
}

async function tarOf(entries: Array<TarHeader & { content?: string }>): Promise<Buffer> {
  const pack = tar.pack();
  for (const { content, ...h } of entries) pack.entry(h, content ?? "");
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const xattr = (path: string) =>
  execFileSync("getfattr", ["--absolute-names", "--only-values", "-n", "trusted.overlay.opaque", path], {
    encoding: "utf8",
  });

describe("layers from an overlay upper dir", () => {
  let layerFile: string;

  beforeAll(async () => {
    const upper = join(work, "upper");
    await mkdir(join(upper, "etc/opq"), { recursive: true });
    await writeFile(join(upper, "etc/app.conf"), "port=8080\n");
    await chmod(join(upper, "etc/app.conf"), 0o640);
    await chown(join(upper, "etc/app.conf"), 1000, 1001);
    await symlink("app.conf", join(upper, "etc/current"));
    await link(join(upper, "etc/app.conf"), join(upper, "etc/app.hard"));
    execFileSync("mknod", [join(upper, "etc/gone"), "c", "0", "0"]);
    await writeFile(join(upper, "etc/opq/new"), "new");
    execFileSync("setfattr", ["-n", "trusted.overlay.opaque", "-v", "y", join(upper, "etc/opq")]);
    await writeFile(join(upper, "skipped"), "x");
    layerFile = join(work, "layer.tar.gz");
    const layer = await createLayer(upper, layerFile, {
      overlayUpper: true,
      mtime,
      skip: (p) => p === "skipped",
    });

    const gz = await readFile(layerFile);
    expect(layer).toEqual({
      file: layerFile,
      digest: digestOf(gz),
      diffId: digestOf(gunzipSync(gz)),
      size: gz.length,
    });
  });

  it("writes sorted entries with whiteouts, opaque markers, links, owners and clamped mtimes", async () => {
    const headers = await listTar(await readFile(layerFile));
    expect(headers.map((h) => h.name)).toEqual([
      "etc/",
      "etc/app.conf",
      "etc/app.hard",
      "etc/current",
      "etc/.wh.gone",
      "etc/opq/",
      "etc/opq/.wh..wh..opq",
      "etc/opq/new",
    ]);
    const byName = new Map(headers.map((h) => [h.name, h]));
    expect(byName.get("etc/app.conf")).toMatchObject({
      type: "file",
      mode: 0o640,
      uid: 1000,
      gid: 1001,
      size: 10,
    });
    expect(byName.get("etc/app.hard")).toMatchObject({ type: "link", linkname: "etc/app.conf" });
    expect(byName.get("etc/current")).toMatchObject({ type: "symlink", linkname: "app.conf" });
    for (const h of headers) expect(h.mtime?.getTime()).toBeLessThanOrEqual(mtime.getTime());
  });

  it("applies in flatten mode: whiteouts delete, opaque dirs hide the lower content", async () => {
    const rootfs = join(work, "flat");
    await mkdir(join(rootfs, "etc/opq"), { recursive: true });
    await writeFile(join(rootfs, "etc/gone"), "lower");
    await writeFile(join(rootfs, "etc/opq/old"), "lower");
    await writeFile(join(rootfs, "etc/keep"), "lower");
    await applyLayer(createReadStream(layerFile), rootfs);

    await expect(lstat(join(rootfs, "etc/gone"))).rejects.toThrow(/ENOENT/);
    await expect(lstat(join(rootfs, "etc/opq/old"))).rejects.toThrow(/ENOENT/);
    expect(await readFile(join(rootfs, "etc/opq/new"), "utf8")).toBe("new");
    expect(await readFile(join(rootfs, "etc/keep"), "utf8")).toBe("lower");
    const conf = await stat(join(rootfs, "etc/app.conf"));
    expect(conf).toMatchObject({ uid: 1000, gid: 1001, mode: 0o100640 });
    expect((await stat(join(rootfs, "etc/app.hard"))).ino).toBe(conf.ino);
    expect(await readlink(join(rootfs, "etc/current"))).toBe("app.conf");
    expect((await stat(join(rootfs, "etc"))).mtime.getTime()).toBeLessThanOrEqual(mtime.getTime());
  });

  it("applies in overlay mode: whiteouts become 0/0 devices, opaque markers the xattr", async () => {
    const lower = join(work, "lower");
    await applyLayer(createReadStream(layerFile), lower, { mode: "overlay" });
    const gone = await lstat(join(lower, "etc/gone"));
    expect(gone.isCharacterDevice()).toBe(true);
    expect(gone.rdev).toBe(0);
    expect(xattr(join(lower, "etc/opq"))).toBe("y");
    await expect(lstat(join(lower, "etc/opq/.wh..wh..opq"))).rejects.toThrow(/ENOENT/);
    expect(await readFile(join(lower, "etc/opq/new"), "utf8")).toBe("new");
  });
});

describe("layers from an upper dir written in a user namespace", () => {
  it("record the ids the namespace saw, and the host's own entries as root's", async () => {
    const range = { hostId: 300_000, size: 65_536 };
    const upper = join(work, "userns-upper");
    await mkdir(join(upper, "home/app"), { recursive: true });
    await chown(join(upper, "home"), range.hostId, range.hostId);
    await chown(join(upper, "home/app"), range.hostId + 1000, range.hostId + 1000);
    await writeFile(join(upper, "home/app/made"), "x");
    await chown(join(upper, "home/app/made"), range.hostId + 1000, range.hostId + 1001);
    // overlayfs makes whiteouts with its mounter's (the host's) credentials.
    execFileSync("mknod", [join(upper, "home/gone"), "c", "0", "0"]);
    // Made on the host, outside the range: recorded as root's.
    await mkdir(join(upper, "tmp"));
    const layerFile = join(work, "userns-layer.tar.gz");
    await createLayer(upper, layerFile, { overlayUpper: true, idRange: range });

    const ids = new Map((await listTar(await readFile(layerFile))).map((h) => [h.name, [h.uid, h.gid]]));
    expect(Object.fromEntries(ids)).toEqual({
      "home/": [0, 0],
      "home/app/": [1000, 1000],
      "home/app/made": [1000, 1001],
      "home/.wh.gone": [0, 0],
      "tmp/": [0, 0],
    });
  });
});

describe("applyLayer refuses entries that escape the target", () => {
  const cases: Array<[string, Array<TarHeader & { content?: string }>]> = [
    ["..", [{ name: "../escaped", content: "x" }]],
    ["an absolute path", [{ name: "/escaped", content: "x" }]],
    [
      "a symlink in the path",
      [
        { name: "out", type: "symlink", linkname: join(tmpdir()) },
        { name: "out/escaped", content: "x" },
      ],
    ],
    ["a hard link out of the root", [{ name: "hard", type: "link", linkname: "../../etc/passwd" }]],
    [
      "a directory the layer turned into a symlink after using it",
      [
        { name: "out/", type: "directory" },
        { name: "out/first", content: "x" },
        { name: "out", type: "symlink", linkname: join(tmpdir()) },
        { name: "out/escaped", content: "x" },
      ],
    ],
  ];
  for (const [what, entries] of cases) {
    it(`through ${what}`, async () => {
      const target = join(work, `escape-${what.replaceAll(" ", "-")}`);
      await expect(applyLayer(Readable.from([await tarOf(entries)]), target)).rejects.toBeInstanceOf(
        LayerEntryError,
      );
      await expect(lstat(join(tmpdir(), "escaped"))).rejects.toThrow(/ENOENT/);
      await expect(lstat(join(work, "escaped"))).rejects.toThrow(/ENOENT/);
    });
  }
});

describe("applyLayer over entries of the same layer", () => {
  it("replaces a file, a directory and a symlink named again, the last entry winning", async () => {
    const target = join(work, "named-again");
    await applyLayer(
      Readable.from([
        await tarOf([
          { name: "file", content: "first" },
          { name: "file", content: "second" },
          { name: "dir/", type: "directory" },
          { name: "dir/inner", content: "x" },
          { name: "dir", content: "now a file" },
          { name: "link", type: "symlink", linkname: "file" },
          { name: "link", content: "now a file too" },
          { name: "dir2/sub/deep", content: "made with its parents" },
        ]),
      ]),
      target,
    );
    expect(await readFile(join(target, "file"), "utf8")).toBe("second");
    expect(await readFile(join(target, "dir"), "utf8")).toBe("now a file");
    expect((await lstat(join(target, "link"))).isFile()).toBe(true);
    expect(await readFile(join(target, "link"), "utf8")).toBe("now a file too");
    expect(await readFile(join(target, "dir2/sub/deep"), "utf8")).toBe("made with its parents");
  });
});
