import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CopySourceError } from "./domain/errors.js";
import { copyIntoRoot, digestSources, findSources, mkdirInRoot, resolveInRoot } from "./rootfs-files.js";

let dir: string;
let root: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-rootfs-files-"));
  root = join(dir, "root");
  await mkdir(join(root, "usr/lib"), { recursive: true });
  await mkdir(join(root, "app/src"), { recursive: true });
  await writeFile(join(root, "app/package.json"), "{}");
  await writeFile(join(root, "app/package-lock.json"), "{}");
  await writeFile(join(root, "app/src/a.js"), "a");
  await writeFile(join(root, "app/src/b.ts"), "b");
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("paths inside a root filesystem", () => {
  it("follows links as if the root were /, never out of it", async () => {
    await symlink("/usr/lib", join(root, "lib"));
    await symlink("../../../../../etc", join(root, "escape"));
    await symlink("/", join(root, "usr/lib/top"));
    expect(await resolveInRoot(root, "/lib/x")).toBe(join(root, "usr/lib/x"));
    expect(await resolveInRoot(root, "/escape/passwd")).toBe(join(root, "etc/passwd"));
    expect(await resolveInRoot(root, "/lib/top/lib/top/app")).toBe(join(root, "app"));
    expect(await resolveInRoot(root, "/lib", false)).toBe(join(root, "lib"));
    await symlink("loop", join(root, "loop"));
    await expect(resolveInRoot(root, "/loop/x")).rejects.toThrow(/too many levels/);
  });

  it("creates missing directories through links, keeping existing ones", async () => {
    await symlink("usr/lib", join(root, "lib"));
    await chmod(join(root, "usr/lib"), 0o700);
    const made = await mkdirInRoot(root, "/lib/node/x", { uid: 1000, gid: 1000 });
    expect(made).toBe(join(root, "usr/lib/node/x"));
    expect((await stat(join(root, "usr/lib"))).mode & 0o777).toBe(0o700);
    const st = await stat(made);
    expect([st.uid, st.mode & 0o777]).toEqual([1000, 0o755]);
  });
});

describe("COPY sources", () => {
  it("expands globs per component and says where a source is missing", async () => {
    const at = { line: 3, instruction: "COPY" };
    expect(await findSources(root, "app/package*.json", "the build context", at)).toEqual([
      { path: "app/package-lock.json", isDir: false },
      { path: "app/package.json", isDir: false },
    ]);
    expect(await findSources(root, "/app/*/?.js", "ctx", at)).toEqual([
      { path: "app/src/a.js", isDir: false },
    ]);
    expect(await findSources(root, "./app/src/", "ctx", at)).toEqual([{ path: "app/src", isDir: true }]);
    await expect(findSources(root, "nope.txt", "the build context", at)).rejects.toThrow(
      "nope.txt: not found in the build context",
    );
    await expect(findSources(root, "*.md", "stage build", at)).rejects.toThrow(CopySourceError);
  });

  it("digests paths, modes and contents, not times", async () => {
    const found = await findSources(root, "app", "ctx", {});
    const before = await digestSources(root, found);
    expect(await digestSources(root, found)).toBe(before);
    await writeFile(join(root, "app/src/a.js"), "a");
    expect(await digestSources(root, found)).toBe(before);
    await chmod(join(root, "app/src/a.js"), 0o755);
    const moded = await digestSources(root, found);
    expect(moded).not.toBe(before);
    await writeFile(join(root, "app/src/a.js"), "changed");
    expect(await digestSources(root, found)).not.toBe(moded);
  });

  it("merges a directory's contents into the destination and sets the owner", async () => {
    const image = join(dir, "image");
    await mkdir(join(image, "srv/src"), { recursive: true });
    await writeFile(join(image, "srv/src/old.txt"), "old");
    await copyIntoRoot(image, join(root, "app/src"), "/srv/src", { uid: 1000, gid: 1000 });
    expect((await readFile(join(image, "srv/src/a.js"))).toString()).toBe("a");
    expect((await readFile(join(image, "srv/src/old.txt"))).toString()).toBe("old");
    expect((await stat(join(image, "srv/src/b.ts"))).uid).toBe(1000);
    await copyIntoRoot(image, join(root, "app/package.json"), "/new/dir/pkg.json", { uid: 0, gid: 0 });
    expect((await readFile(join(image, "new/dir/pkg.json"))).toString()).toBe("{}");
  });

  it("copies a tree many entries at a time: new folders whole, existing ones merged, a file replaced by a folder, a link to a folder followed", async () => {
    const src = join(dir, "src");
    for (let d = 0; d < 10; d++) {
      await mkdir(join(src, `deep/d${d}/e`), { recursive: true });
      for (let f = 0; f < 20; f++) await writeFile(join(src, `deep/d${d}/e/f${f}`), `${d}-${f}`);
    }
    await mkdir(join(src, "conf"));
    await writeFile(join(src, "conf/app.ini"), "ini");
    await mkdir(join(src, "lib"));
    await writeFile(join(src, "lib/libx.so"), "so");
    await writeFile(join(src, "a.txt"), "new");
    const image = join(dir, "image");
    await mkdir(join(image, "srv"), { recursive: true });
    await mkdir(join(image, "usr/lib"), { recursive: true });
    await writeFile(join(image, "srv/conf"), "a file where the source has a folder");
    await writeFile(join(image, "srv/a.txt"), "old");
    await symlink("/usr/lib", join(image, "srv/lib"));
    await copyIntoRoot(image, src, "/srv", { uid: 0, gid: 0 });
    for (let d = 0; d < 10; d++)
      for (let f = 0; f < 20; f++)
        expect((await readFile(join(image, `srv/deep/d${d}/e/f${f}`))).toString()).toBe(`${d}-${f}`);
    expect((await readFile(join(image, "srv/conf/app.ini"))).toString()).toBe("ini");
    expect((await readFile(join(image, "usr/lib/libx.so"))).toString()).toBe("so");
    expect((await readFile(join(image, "srv/a.txt"))).toString()).toBe("new");
  });

  it("leaves the paths it is told to out of a copied directory", async () => {
    const image = join(dir, "image");
    await mkdir(image, { recursive: true });
    await copyIntoRoot(
      image,
      join(root, "app"),
      "/app",
      { uid: 0, gid: 0 },
      undefined,
      new Set([join(root, "app/package.json")]),
    );
    expect((await readFile(join(image, "app/src/a.js"))).toString()).toBe("a");
    await expect(stat(join(image, "app/package.json"))).rejects.toThrow(/ENOENT/);
  });
});
