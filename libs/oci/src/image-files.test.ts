import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { describe, expect, it } from "vitest";
import { type ImageFilesOptions, readImageFiles } from "./image-files.js";

type Entry =
  | { name: string; body: string }
  | { name: string; symlink: string }
  | { name: string; hardlink: string }
  | { name: string; dir: true };

/** A gzipped tar layer of `entries`, made with tar-stream as a registry would hold it. */
async function layer(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    if ("body" in e) pack.entry({ name: e.name }, e.body);
    else if ("symlink" in e) pack.entry({ name: e.name, type: "symlink", linkname: e.symlink });
    else if ("hardlink" in e) pack.entry({ name: e.name, type: "link", linkname: e.hardlink });
    else pack.entry({ name: e.name, type: "directory" });
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

async function read(layers: Entry[][], opts: Partial<ImageFilesOptions> = {}) {
  const blobs = await Promise.all(layers.map(layer));
  const result = await readImageFiles(
    (async function* () {
      for (const b of blobs)
        yield (async function* () {
          yield b;
        })();
    })(),
    { folders: [["app", "public"]], maxFileBytes: 1024, maxTotalBytes: 4096, maxFiles: 100, ...opts },
  );
  return {
    files: Object.fromEntries([...result.files].map(([k, v]) => [k, v.toString()])),
    warnings: result.warnings,
  };
}

describe("readImageFiles", () => {
  it("reads only the files under the folders, upper layers replacing lower ones", async () => {
    const { files, warnings } = await read([
      [
        { name: "app/", dir: true },
        { name: "app/public/", dir: true },
        { name: "app/public/index.html", body: "v1" },
        { name: "app/public/css/site.css", body: "body{}" },
        { name: "app/server.js", body: "secret" },
        { name: "etc/passwd", body: "root" },
      ],
      [{ name: "app/public/index.html", body: "v2" }],
    ]);
    expect(files).toEqual({ "app/public/index.html": "v2", "app/public/css/site.css": "body{}" });
    expect(warnings).toEqual([]);
  });

  it("applies whiteouts and opaque folders of upper layers", async () => {
    const { files } = await read([
      [
        { name: "app/public/a.txt", body: "a" },
        { name: "app/public/old/b.txt", body: "b" },
        { name: "app/public/keep/c.txt", body: "c" },
      ],
      [
        { name: "app/public/.wh.a.txt", body: "" },
        { name: "app/public/old/.wh..wh..opq", body: "" },
        { name: "app/public/old/new.txt", body: "n" },
      ],
    ]);
    expect(files).toEqual({ "app/public/keep/c.txt": "c", "app/public/old/new.txt": "n" });
  });

  it("drops everything under a folder an upper layer whites out or replaces with a symlink", async () => {
    const whiteout = await read([[{ name: "app/public/a.txt", body: "a" }], [{ name: ".wh.app", body: "" }]]);
    expect(whiteout.files).toEqual({});
    const replaced = await read([
      [{ name: "app/public/a.txt", body: "a" }],
      [{ name: "app/public", symlink: "/etc" }],
    ]);
    expect(replaced.files).toEqual({});
  });

  it("never follows a symlink, and takes a hard link only to a file under the folders", async () => {
    const { files, warnings } = await read([
      [
        { name: "etc/shadow", body: "hash" },
        { name: "app/public/a.txt", body: "a" },
        { name: "app/public/passwd", symlink: "/etc/shadow" },
        { name: "app/public/up", symlink: "../../etc" },
        { name: "app/public/shadow", hardlink: "etc/shadow" },
        { name: "app/public/b.txt", hardlink: "app/public/a.txt" },
      ],
    ]);
    expect(files).toEqual({ "app/public/a.txt": "a", "app/public/b.txt": "a" });
    expect(warnings).toEqual([
      "/app/public/passwd is a symlink (to /etc/shadow): symlinks are not followed, not served",
      "/app/public/up is a symlink (to ../../etc): symlinks are not followed, not served",
      "/app/public/shadow is a hard link to /etc/shadow, which is not a static file: not served",
    ]);
  });

  it("leaves out, with a warning, a file over the file limit and files past the total", async () => {
    const { files, warnings } = await read(
      [
        [
          { name: "app/public/big.bin", body: "x".repeat(200) },
          { name: "app/public/a.txt", body: "y".repeat(60) },
          { name: "app/public/b.txt", body: "z".repeat(60) },
        ],
      ],
      { maxFileBytes: 100, maxTotalBytes: 100 },
    );
    expect(Object.keys(files)).toEqual(["app/public/a.txt"]);
    expect(warnings).toEqual([
      "/app/public/big.bin is 200 bytes, over the 100 bytes a static file may have: not served",
      "/app/public/b.txt: the statics are over 100 bytes or 100 files in all: not served",
    ]);
  });

  it("counts hard links and long paths against the limits: a layer of links or long names makes no huge manifest", async () => {
    const links = Array.from({ length: 10 }, (_, i) => ({
      name: `app/public/l${i}`,
      hardlink: "app/public/a",
    }));
    const { files, warnings } = await read([[{ name: "app/public/a", body: "x" }, ...links]], {
      maxFiles: 4,
    });
    expect(Object.keys(files)).toHaveLength(4);
    expect(warnings[0]).toMatch(/over .* or 4 files in all: not served/);
    const long = `app/public/${"n".repeat(1100)}`;
    const named = await read([[{ name: long, body: "x" }]]);
    expect(named.files).toEqual({});
    expect(named.warnings[0]).toMatch(/is a path over 1024 bytes: not served/);
  });
});
