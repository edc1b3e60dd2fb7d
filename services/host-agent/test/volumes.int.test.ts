import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, open, readFile, readlink, rm, statfs, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { loopDevices, VolumeDisks } from "../src/volumes/disk.js";
import { SnapshotStore } from "../src/volumes/snapshots.js";

// Real ext4 images on real loop devices, in a temp folder; every device and mount is gone after.
const MIB = 2 ** 20;
const canLoop = process.getuid?.() === 0 && existsSync("/dev/loop-control");

let root = "";
let disks: VolumeDisks;
let nc: NatsConnection;
let snapshots: SnapshotStore;
const made: string[] = [];

function volumeId(): string {
  const id = `vol_${createHash("sha256").update(`${Math.random()}`).digest("hex").slice(0, 16)}`;
  made.push(id);
  return id;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Calls `check` until it resolves, or throws its last error after 5 s. */
async function until(check: () => Promise<void>): Promise<void> {
  for (const deadline = Date.now() + 5000; ; ) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await sleep(20);
    }
  }
}

function hasOnlineResize(): boolean {
  return new VolumeDisks({ dir: "/", mountsDir: "/", freezeTimeoutMs: 1 }).onlineResize;
}

async function devicesUnder(dir: string): Promise<string[]> {
  return (await loopDevices()).filter((d) => d.file.startsWith(`${dir}/`)).map((d) => d.name);
}

describe.runIf(canLoop)("volume disks on loop devices", () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "hangar-volumes-"));
    disks = new VolumeDisks({
      dir: join(root, "volumes"),
      mountsDir: join(root, "mounts"),
      freezeTimeoutMs: 10_000,
    });
    nc = await connect({ servers: inject("natsUrl") });
    snapshots = await SnapshotStore.open(nc);
  });
  afterEach(async () => {
    for (const id of made.splice(0)) {
      await disks.unmount(id);
      await disks.remove(id);
      await snapshots.delete(id, "vs_00000000000test1");
    }
  });
  afterAll(async () => {
    await nc?.close();
    if (root) {
      expect(await devicesUnder(root)).toEqual([]);
      await rm(root, { recursive: true, force: true });
    }
  });

  it("makes, mounts and grows a volume while it is mounted: the mounted filesystem sees the new size", async () => {
    const id = volumeId();
    await disks.create(id, 64 * MIB);
    // Made again (a retried command): the same volume, untouched.
    await disks.create(id, 64 * MIB);
    const at = await disks.mount(id);
    expect(await disks.mount(id)).toBe(at);
    await writeFile(join(at, "hello.txt"), "hello");
    const before = await statfs(at);
    const statBefore = await disks.stat(id);
    expect(statBefore.mounted).toBe(true);
    expect(statBefore.size_gb * 1024).toBe(64);

    const grown = await disks.extend(id, 128 * MIB);
    // ext4 grows a mounted filesystem only for a process with CAP_SYS_RESOURCE.
    console.log(`online resize: ${disks.onlineResize ? "yes" : "no (the agent lacks CAP_SYS_RESOURCE)"}`);
    expect(grown.online).toBe(disks.onlineResize);
    const after = await statfs(at);
    if (grown.online)
      expect(after.blocks * after.bsize).toBeGreaterThan(before.blocks * before.bsize + 60 * MIB);
    else expect(after.blocks).toBe(before.blocks);
    expect(await readFile(join(at, "hello.txt"), "utf8")).toBe("hello");
    await expect(disks.extend(id, 32 * MIB)).rejects.toThrow(/only grows/);
    expect(await disks.remove(id).catch((e: Error) => e.message)).toMatch(/is mounted on this host/);

    await disks.unmount(id);
    expect(await devicesUnder(root)).toEqual([]);
    const unmounted = await disks.stat(id);
    expect(unmounted.mounted).toBe(false);
    // Offline growth, then the next mount has the data and the whole size.
    expect(await disks.extend(id, 160 * MIB)).toEqual({ online: true });
    const offline = await disks.stat(id);
    expect(offline.mounted).toBe(false);
    expect(offline.blocks * offline.block_size).toBeGreaterThan(130 * MIB);
    expect(offline.blocks).toBeGreaterThan(unmounted.blocks);
    // An unmounted volume's figures are read once per change: the same again, then what a mount wrote.
    expect(await disks.stat(id)).toEqual(offline);
    const remounted = await disks.mount(id);
    expect(await readFile(join(remounted, "hello.txt"), "utf8")).toBe("hello");
    await writeFile(join(remounted, "more.bin"), Buffer.alloc(8 * MIB, 1));
    await disks.unmount(id);
    expect((await disks.stat(id)).used_bytes).toBeGreaterThan(offline.used_bytes + 7 * MIB);
    expect(await readFile(join(await disks.mount(id), "hello.txt"), "utf8")).toBe("hello");
  });

  it.runIf(!hasOnlineResize())(
    "grows a filesystem that could not grow online at its next mount",
    async () => {
      const id = volumeId();
      await disks.create(id, 64 * MIB);
      const at = await disks.mount(id);
      expect(await disks.extend(id, 128 * MIB)).toEqual({ online: false });
      expect(await disks.growPending(id)).toBe(true);
      await disks.unmount(id);
      const again = await statfs(await disks.mount(id));
      expect(await disks.growPending(id)).toBe(false);
      expect(again.blocks * again.bsize).toBeGreaterThan(100 * MIB);
      expect(at).toBe(disks.mountPoint(id));
    },
  );

  it("grows at its next mount while the old mount's last user is still letting go of the loop device", async () => {
    // As an agent without CAP_SYS_RESOURCE, so the growth waits for the next mount on any host.
    const offline = new VolumeDisks({
      dir: join(root, "volumes"),
      mountsDir: join(root, "mounts"),
      freezeTimeoutMs: 10_000,
      onlineResize: false,
    });
    const id = volumeId();
    await offline.create(id, 64 * MIB);
    const at = await offline.mount(id);
    // A process in a mount namespace of its own binds the volume elsewhere, as a machine's sandbox does,
    // and holds it until the kernel has torn it down: the unmount leaves the loop device attached.
    const bound = join(root, `bound-${id}`);
    await mkdir(bound);
    const holder = spawn(
      "unshare",
      ["-m", "--propagation", "private", "sh", "-c", 'mount --bind "$0" "$1" && exec sleep 60', at, bound],
      { stdio: "ignore" },
    );
    try {
      const ours = await readlink("/proc/self/ns/mnt");
      await until(async () => expect(await readlink(`/proc/${holder.pid}/ns/mnt`)).not.toBe(ours));
      await until(async () => expect(await readlink(`/proc/${holder.pid}/exe`)).toMatch(/sleep$/));
      expect(await offline.extend(id, 128 * MIB)).toEqual({ online: false });
      await offline.unmount(id);
      expect(await devicesUnder(root)).toHaveLength(1);
      const mounting = offline.mount(id);
      await sleep(300);
      holder.kill();
      const again = await statfs(await mounting);
      expect(again.blocks * again.bsize).toBeGreaterThan(100 * MIB);
      expect(await offline.growPending(id)).toBe(false);
    } finally {
      holder.kill();
    }
  });

  it("snapshots a mounted volume under fsfreeze and restores it byte for byte into a new, larger volume", async () => {
    const id = volumeId();
    await disks.create(id, 64 * MIB);
    const at = await disks.mount(id);
    const data = new Uint8Array(3 * MIB).map((_, i) => (i * 7919) % 251);
    await writeFile(join(at, "data.bin"), data);
    const snap = await snapshots.take(disks, id, "vs_00000000000test1");
    console.log(
      `snapshot of a mounted 64 MiB volume: frozen ${snap.freeze_ms} ms, ${snap.size} -> ${snap.stored_size} bytes`,
    );
    expect(snap.size).toBe(64 * MIB);
    expect(snap.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(snap.stored_size).toBeLessThan(snap.size);
    expect(snap.freeze_ms).toBeGreaterThanOrEqual(0);
    // Asked again: the stored one.
    expect(await snapshots.take(disks, id, "vs_00000000000test1")).toEqual(snap);
    // The volume was thawed: it takes writes after the snapshot.
    await writeFile(join(at, "later.txt"), "after the snapshot");

    const copy = volumeId();
    await snapshots.restore(disks, copy, 96 * MIB, { volume_id: id, snapshot_id: "vs_00000000000test1" });
    const copyAt = await disks.mount(copy);
    expect(sha256(await readFile(join(copyAt, "data.bin")))).toBe(sha256(data));
    expect(existsSync(join(copyAt, "later.txt"))).toBe(false);
    const grown = await statfs(copyAt);
    expect(grown.blocks * grown.bsize).toBeGreaterThan(80 * MIB);

    await expect(
      snapshots.restore(disks, volumeId(), 64 * MIB, { volume_id: id, snapshot_id: "vs_000000000000none" }),
    ).rejects.toThrow(/is not in VOLUME_SNAPSHOTS/);
  });

  it("gives the writer of a full volume ENOSPC and leaves the host's other volume writable", async () => {
    const full = volumeId();
    const other = volumeId();
    await disks.create(full, 32 * MIB);
    await disks.create(other, 32 * MIB);
    const fullAt = await disks.mount(full);
    const otherAt = await disks.mount(other);
    const file = await open(join(fullAt, "fill"), "w");
    const chunk = Buffer.alloc(MIB, 1);
    let error: NodeJS.ErrnoException | undefined;
    try {
      for (let i = 0; i < 64 && !error; i++)
        await file.write(chunk).then(
          () => file.sync(),
          (e: NodeJS.ErrnoException) => {
            error = e;
          },
        );
    } finally {
      await file.close().catch(() => {});
    }
    expect(error?.code).toBe("ENOSPC");
    // What is left is less than the write that failed.
    const left = await disks.stat(full);
    expect(left.blocks_avail * left.block_size).toBeLessThan(MIB);
    await writeFile(join(otherAt, "ok.txt"), "still fine");
    expect(await readFile(join(otherAt, "ok.txt"), "utf8")).toBe("still fine");
  });

  it("says so when the host has no loop devices", async () => {
    const id = volumeId();
    await disks.create(id, 32 * MIB);
    const noLoops = new VolumeDisks({ ...disks.opts, loopControl: join(root, "no-loop-control") });
    await expect(noLoops.mount(id)).rejects.toThrow(/this host has no loop devices .* cannot attach volumes/);
    expect(await devicesUnder(root)).toEqual([]);
  });
});
