import { lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GuestFileError, writeGuestFile } from "./guest-files.js";

// A root filesystem is a folder here: the walk is the same on a mounted overlay.
let base: string;
let root: string;
let outside: string;
const owners = { file: { uid: 101_000, gid: 101_001 }, folder: { uid: 100_000, gid: 100_000 } };

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "guest-files-"));
  root = join(base, "root");
  outside = join(base, "host");
  await mkdir(root);
  await mkdir(outside);
  await writeFile(join(outside, "shadow"), "host secret\n");
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const text = (s: string) => new TextEncoder().encode(s);

describe("writeGuestFile", () => {
  it("writes the file with its mode and the machine user's ids, making its folders as the machine's root", async () => {
    await writeGuestFile(root, "/etc/app/config.json", text("{}"), 0o600, owners);
    const file = await stat(join(root, "etc/app/config.json"));
    expect(await readFile(join(root, "etc/app/config.json"), "utf8")).toBe("{}");
    expect([file.mode & 0o7777, file.uid, file.gid]).toEqual([0o600, 101_000, 101_001]);
    const folder = await stat(join(root, "etc/app"));
    expect([folder.mode & 0o7777, folder.uid, folder.gid]).toEqual([0o755, 100_000, 100_000]);
  });

  it("replaces what the file had at every boot, and leaves no temporary file", async () => {
    await writeGuestFile(root, "/a.txt", text("one"), 0o644, owners);
    await writeGuestFile(root, "/a.txt", text("two"), 0o640, owners);
    expect(await readFile(join(root, "a.txt"), "utf8")).toBe("two");
    expect(((await stat(join(root, "a.txt"))).mode & 0o777).toString(8)).toBe("640");
    const { readdir } = await import("node:fs/promises");
    expect(await readdir(root)).toEqual(["a.txt"]);
  });

  it("resolves a parent symlink with an absolute target inside the root filesystem, not the host's", async () => {
    // /etc -> <host folder> on the host, but inside the machine an absolute link starts at its root.
    await symlink(outside, join(root, "etc"));
    await writeGuestFile(root, "/etc/shadow", text("mine"), 0o644, owners);
    expect(await readFile(join(outside, "shadow"), "utf8")).toBe("host secret\n");
    expect(await readFile(join(root, outside, "shadow"), "utf8")).toBe("mine");
  });

  it("never climbs out of the root filesystem through a relative link full of ..", async () => {
    await symlink("../../../../../../../..", join(root, "up"));
    await writeGuestFile(root, "/up/escaped", text("x"), 0o644, owners);
    expect(await readFile(join(root, "escaped"), "utf8")).toBe("x");
    await expect(stat(join(base, "escaped"))).rejects.toThrow("ENOENT");
  });

  it("follows merged-/usr style links inside the root (/lib -> usr/lib)", async () => {
    await mkdir(join(root, "usr/lib"), { recursive: true });
    await symlink("usr/lib", join(root, "lib"));
    await writeGuestFile(root, "/lib/app/x.so", text("so"), 0o644, owners);
    expect(await readFile(join(root, "usr/lib/app/x.so"), "utf8")).toBe("so");
    expect((await lstat(join(root, "lib"))).isSymbolicLink()).toBe(true);
  });

  it("replaces a symlink at the file's own path instead of writing through it", async () => {
    await symlink(join(outside, "shadow"), join(root, "config"));
    await writeGuestFile(root, "/config", text("new"), 0o644, owners);
    expect(await readFile(join(outside, "shadow"), "utf8")).toBe("host secret\n");
    const st = await lstat(join(root, "config"));
    expect(st.isFile()).toBe(true);
  });

  it("refuses a symlink loop, a file where a folder should be, a folder at the path, and a host mount", async () => {
    await symlink("/loop", join(root, "loop"));
    await expect(writeGuestFile(root, "/loop/x", text(""), 0o644, owners)).rejects.toThrow(
      "file /loop/x: too many levels of symbolic links",
    );
    await writeFile(join(root, "plain"), "");
    await expect(writeGuestFile(root, "/plain/x", text(""), 0o644, owners)).rejects.toThrow(
      "file /plain/x: /plain is not a folder",
    );
    await mkdir(join(root, "dir"));
    await expect(writeGuestFile(root, "/dir", text(""), 0o644, owners)).rejects.toThrow(GuestFileError);
    // A dir: machine's /usr is a bind of the host's: the walk stops there, link or no link.
    await mkdir(join(root, "usr"));
    await symlink("/usr", join(root, "u"));
    const mounts = new Set([join(root, "usr")]);
    for (const path of ["/usr/x", "/u/x"]) {
      await expect(writeGuestFile(root, path, text(""), 0o644, owners, mounts)).rejects.toThrow(
        "/usr is a folder of the host, not of the machine",
      );
    }
    expect(await readlink(join(root, "u"))).toBe("/usr");
  });
});
