import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UnknownUserError } from "./errors.js";
import { resolveUser, sandboxArgv } from "./sandbox.js";

describe("sandboxArgv", () => {
  it("isolates by default: rootfs as /, own pid/ipc/uts/net, cleared env, cwd /", () => {
    expect(sandboxArgv({ rootfs: "/r", argv: ["node", "-v"] })).toEqual([
      "bwrap",
      ...["--bind", "/r", "/", "--proc", "/proc", "--dev", "/dev"],
      ...["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net"],
      ...["--chdir", "/", "--clearenv", "--", "node", "-v"],
    ]);
  });

  it("adds the network, tmpfs, user, binds, env and cwd when asked", () => {
    const argv = sandboxArgv({
      rootfs: "/r",
      argv: ["sh", "-c", "id"],
      cwd: "/app",
      env: { PATH: "/usr/bin", HOME: "/home/node" },
      uid: 1000,
      gid: 1001,
      network: true,
      tmpfs: true,
      dieWithParent: true,
      binds: [
        { src: "/etc/resolv.conf", dest: "/etc/resolv.conf", readOnly: true },
        { src: "/data", dest: "/data" },
      ],
    });
    expect(argv).not.toContain("--unshare-net");
    expect(argv.join(" ")).toBe(
      "bwrap --bind /r / --proc /proc --dev /dev --tmpfs /tmp --unshare-pid --unshare-ipc --unshare-uts " +
        "--die-with-parent --unshare-user --uid 1000 --gid 1001 --ro-bind /etc/resolv.conf /etc/resolv.conf " +
        "--bind /data /data --chdir /app --clearenv --setenv PATH /usr/bin --setenv HOME /home/node -- sh -c id",
    );
  });
});

describe("resolveUser", () => {
  let rootfs: string;
  beforeAll(async () => {
    rootfs = await mkdtemp(join(tmpdir(), "oci-user-"));
    await mkdir(join(rootfs, "etc"));
    await writeFile(
      join(rootfs, "etc/passwd"),
      "root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\napp:x:1500:1600::/app:/bin/sh\n",
    );
    await writeFile(join(rootfs, "etc/group"), "root:x:0:\nnode:x:1000:\napp:x:1600:\nstaff:x:50:\n");
  });
  afterAll(() => rm(rootfs, { recursive: true, force: true }));

  it("resolves names, numbers and user:group pairs", async () => {
    expect(await resolveUser(rootfs, "node")).toEqual({ uid: 1000, gid: 1000 });
    expect(await resolveUser(rootfs, "1500")).toEqual({ uid: 1500, gid: 1600 });
    expect(await resolveUser(rootfs, "1000:1000")).toEqual({ uid: 1000, gid: 1000 });
    expect(await resolveUser(rootfs, "app:app")).toEqual({ uid: 1500, gid: 1600 });
    expect(await resolveUser(rootfs, "app:staff")).toEqual({ uid: 1500, gid: 50 });
    expect(await resolveUser(rootfs, "4242")).toEqual({ uid: 4242, gid: 0 });
  });

  it("refuses names the image does not know", async () => {
    await expect(resolveUser(rootfs, "ghost")).rejects.toBeInstanceOf(UnknownUserError);
    await expect(resolveUser(rootfs, "node:ghosts")).rejects.toThrow(/not in the image's \/etc\/group/);
  });

  it("never reads the host's passwd through a symlink", async () => {
    const other = await mkdtemp(join(tmpdir(), "oci-user-link-"));
    await mkdir(join(other, "etc"));
    await symlink("/etc/passwd", join(other, "etc/passwd"));
    await expect(resolveUser(other, "root")).rejects.toBeInstanceOf(UnknownUserError);
    await rm(other, { recursive: true, force: true });
  });

  it("never follows a symlinked /etc out of the root, nor reads a FIFO or a device", async () => {
    const other = await mkdtemp(join(tmpdir(), "oci-user-hostile-"));
    // /etc -> the host's /etc: a machine's root can make its own /etc that, in its writable layer.
    await symlink("/etc", join(other, "etc"));
    await expect(resolveUser(other, "root")).rejects.toBeInstanceOf(UnknownUserError);
    await rm(join(other, "etc"));
    await mkdir(join(other, "etc"));
    // A FIFO would block the read for ever; /dev/zero would never end.
    execFileSync("mkfifo", [join(other, "etc/passwd")]);
    await expect(resolveUser(other, "root")).rejects.toBeInstanceOf(UnknownUserError);
    await rm(join(other, "etc/passwd"));
    await symlink("/dev/zero", join(other, "etc/passwd"));
    await expect(resolveUser(other, "root")).rejects.toBeInstanceOf(UnknownUserError);
    await rm(other, { recursive: true, force: true });
  });
});
