import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { extract } from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { formatBytes, packContext } from "./build-context.js";

let dir: string;
let out: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-context-test-"));
  out = await mkdtemp(join(tmpdir(), "hangar-context-out-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(out, { recursive: true, force: true });
});

async function files(tree: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(tree)) {
    await mkdir(join(dir, path, ".."), { recursive: true });
    await writeFile(join(dir, path), text);
  }
}

interface TarEntry {
  type: string;
  linkname?: string;
  text?: string;
}

/** Reads the tar back: each entry's type, link target and content. */
async function readTar(file: string): Promise<Record<string, TarEntry>> {
  const entries: Record<string, TarEntry> = {};
  const ex = extract();
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const h = entry.header;
      entries[h.name] = {
        type: h.type,
        ...(h.type === "symlink" ? { linkname: h.linkname } : {}),
        ...(h.type === "file" ? { text: Buffer.concat(chunks).toString("utf8") } : {}),
      };
    }
  })();
  createReadStream(file).pipe(ex);
  await done;
  return entries;
}

describe("packContext", () => {
  it("honours .dockerignore, negations included, and always sends the Dockerfile and the ignore file", async () => {
    await files({
      Dockerfile: "FROM node:20\n",
      ".dockerignore":
        "# build junk\nnode_modules\n*.log\n!important.log\nsecrets/\nDockerfile\n.dockerignore\ndist/**\n!dist/keep.js\n",
      "server.js": "console.log('hi')\n",
      "debug.log": "noise",
      "important.log": "keep me",
      "node_modules/express/index.js": "x",
      "secrets/key.pem": "private",
      "dist/drop.js": "x",
      "dist/keep.js": "kept",
      "src/app/util.js": "u",
    });
    const packed = await packContext(dir, join(out, "context.tar"));
    const tar = await readTar(packed.file);
    expect(Object.keys(tar).sort()).toEqual([
      ".dockerignore",
      "Dockerfile",
      "dist",
      "dist/keep.js",
      "important.log",
      "server.js",
      "src",
      "src/app",
      "src/app/util.js",
    ]);
    expect(tar["src/app"]?.type).toBe("directory");
    expect(tar["dist/keep.js"]?.text).toBe("kept");
    expect(packed).toMatchObject({ files: 6, dirs: 3, symlinks: 0, skipped: [] });
  });

  it("leaves out an ignored folder and everything in it", async () => {
    await files({ Dockerfile: "FROM x\n", ".dockerignore": "cache\n", "cache/a": "a", "app.js": "1" });
    const tar = await readTar((await packContext(dir, join(out, "c.tar"))).file);
    expect(Object.keys(tar).sort()).toEqual([".dockerignore", "Dockerfile", "app.js"]);
  });

  it("keeps symlinks as links, even dangling ones or ones pointing out of the context", async () => {
    await files({ Dockerfile: "FROM x\n", "real/config.json": "{}" });
    await symlink("real/config.json", join(dir, "config.json"));
    await symlink("../../etc/passwd", join(dir, "outside"));
    await symlink("nowhere", join(dir, "dangling"));
    await symlink("real", join(dir, "linked-dir"));
    const packed = await packContext(dir, join(out, "c.tar"));
    const tar = await readTar(packed.file);
    expect(tar["config.json"]).toEqual({ type: "symlink", linkname: "real/config.json" });
    expect(tar.outside).toEqual({ type: "symlink", linkname: "../../etc/passwd" });
    expect(tar.dangling).toEqual({ type: "symlink", linkname: "nowhere" });
    expect(tar["linked-dir"]).toEqual({ type: "symlink", linkname: "real" });
    expect(tar["linked-dir/config.json"]).toBeUndefined();
    expect(packed.symlinks).toBe(4);
  });

  it("uses the ignore file and Dockerfile the config names, and reports the tar's size", async () => {
    await files({
      "docker/web.Dockerfile": "FROM x\n",
      "docker/web.ignore": "docker\n*.md\n",
      ".dockerignore": "app.js\n",
      "app.js": "1",
      "README.md": "r",
    });
    const packed = await packContext(dir, join(out, "c.tar"), {
      dockerfile: "docker/web.Dockerfile",
      ignoreFile: "docker/web.ignore",
    });
    const tar = await readTar(packed.file);
    expect(Object.keys(tar).sort()).toEqual([
      ".dockerignore",
      "app.js",
      "docker",
      "docker/web.Dockerfile",
      "docker/web.ignore",
    ]);
    // Every entry is a 512-byte header plus content padded to 512, and the tar ends with two empty blocks.
    expect(packed.size % 512).toBe(0);
    expect(packed.size).toBeGreaterThanOrEqual(5 * 512);
  });

  it("refuses a Dockerfile outside the context", async () => {
    await expect(packContext(dir, join(out, "c.tar"), { dockerfile: "../Dockerfile" })).rejects.toThrow(
      /outside the build context/,
    );
  });
});

describe("formatBytes", () => {
  it("uses decimal units", () => {
    expect(formatBytes(12)).toBe("12 B");
    expect(formatBytes(1_234)).toBe("1.2 kB");
    expect(formatBytes(340_000)).toBe("340 kB");
    expect(formatBytes(5_600_000)).toBe("5.6 MB");
  });
});
