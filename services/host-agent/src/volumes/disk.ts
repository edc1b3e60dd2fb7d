import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, rename, rm, stat, statfs } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { isSnapshotId, isVolumeId } from "@hangar/domain";
import type { DomainErrorCode } from "@hangar/eventstore";
import { runTool as run } from "@hangar/oci";
import { KeyedSerial, type VolumeStat } from "@hangar/service";
import { isMountPoint } from "../driver/rootfs.js";

/** Bytes in a GiB: volume sizes are whole GiB, as Fly's size_gb. */
export const GIB = 2 ** 30;

/** A disk operation refused because of the volume's state (mounted, missing), with the bus's error code. */
export class VolumeDiskError extends Error {
  override name = "VolumeDiskError";
  constructor(
    message: string,
    readonly code: DomainErrorCode,
  ) {
    super(message);
  }
}

/** Throws `invalid_argument` unless `id` is a volume id. */
export function checkVolumeId(id: string): void {
  // They become file names: nothing but the platform's shape passes.
  if (!isVolumeId(id))
    throw new VolumeDiskError(`not a volume id: ${JSON.stringify(id)}`, "invalid_argument");
}

/** Throws `invalid_argument` unless `id` is a snapshot id (they name object-store entries and temp files). */
export function checkSnapshotId(id: string): void {
  if (!isSnapshotId(id))
    throw new VolumeDiskError(`not a snapshot id: ${JSON.stringify(id)}`, "invalid_argument");
}

export interface VolumeDisksOptions {
  /** Where the image files live (`<id>.ext4`). */
  dir: string;
  /** Where volumes are mounted on the host (`<id>`), for machines to bind. */
  mountsDir: string;
  /** How long a mounted volume may stay frozen for a snapshot's copy. */
  freezeTimeoutMs: number;
  /** The loop control device; a host without it cannot attach volumes. */
  loopControl?: string;
  /** Whether mounted filesystems may be grown (ext4 wants CAP_SYS_RESOURCE); by default, whether the agent has it. */
  onlineResize?: boolean;
  /** How long a mount that must grow the filesystem waits for the volume's old loop device to go (10 s). */
  detachWaitMs?: number;
}

/**
 * The volumes of one host as ext4 filesystems in image files, with Debian's tools: fallocate and
 * mkfs.ext4 make them, losetup and mount attach them, resize2fs grows them (online when mounted),
 * fsfreeze holds a mounted one still while its image is copied for a snapshot. Operations on one
 * volume run one at a time.
 */
export class VolumeDisks {
  readonly #locks = new KeyedSerial();
  /**
   * Unmounted volumes' figures from their superblocks (dumpe2fs), for the gateway's reads and the
   * metrics' scrapes: read again once the image file changed (mtime, size) or an operation here
   * touched it.
   */
  readonly #unmountedStats = new Map<string, { mtimeMs: number; size: number; stat: VolumeStat }>();
  readonly #loopControl: string;

  readonly #onlineResize: boolean;

  constructor(readonly opts: VolumeDisksOptions) {
    this.#loopControl = opts.loopControl ?? "/dev/loop-control";
    this.#onlineResize = opts.onlineResize ?? hasCapability(CAP_SYS_RESOURCE);
  }

  /** Whether a mounted volume's filesystem grows at once (see extend). */
  get onlineResize(): boolean {
    return this.#onlineResize;
  }

  /** The image file of a volume. */
  imagePath(id: string): string {
    checkVolumeId(id);
    return join(this.opts.dir, `${id}.ext4`);
  }

  /** Where a volume is mounted on the host while a machine uses it. */
  mountPoint(id: string): string {
    checkVolumeId(id);
    return join(this.opts.mountsDir, id);
  }

  /** Whether the volume's image file exists. */
  exists(id: string): boolean {
    return existsSync(this.imagePath(id));
  }

  /** Whether the volume is mounted on the host. */
  isMounted(id: string): boolean {
    return isMountPoint(this.mountPoint(id));
  }

  /** The ids of the volumes with an image file here. */
  async list(): Promise<string[]> {
    const names = await readdir(this.opts.dir).catch(() => [] as string[]);
    return names.flatMap((n) => {
      const id = n.endsWith(".ext4") ? n.slice(0, -".ext4".length) : "";
      return isVolumeId(id) ? [id] : [];
    });
  }

  /** Runs `fn` after every earlier operation on volume `id` has finished. */
  serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.#locks.run(id, fn);
  }

  /**
   * Makes an empty ext4 volume of `bytes` (allocated up front, so a full host fails the create, not
   * the app's writes later), its root owned by uid 0 as stored on disk: the machine's root, through
   * the idmapped bind. No reserved blocks: a machine's root is not the host's and could not use them.
   * Made under a temp name and renamed, so a crash never leaves a half-made volume under its name.
   * An existing volume is left as it is (the create is idempotent).
   */
  async create(id: string, bytes: number): Promise<void> {
    const path = this.imagePath(id);
    this.#unmountedStats.delete(id);
    if (existsSync(path)) return;
    await mkdir(this.opts.dir, { recursive: true, mode: 0o700 });
    const tmp = this.#tempPath(id);
    try {
      await allocate(tmp, bytes);
      await run("mkfs.ext4", ["-F", "-q", "-m", "0", "-E", "root_owner=0:0", tmp]);
      await rename(tmp, path);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * Makes volume `id` from a snapshot's raw image, zstd-compressed in `compressed`, grown to `bytes`
   * (a restore into a larger volume). Holes stay holes.
   */
  async restore(id: string, bytes: number, compressed: Readable): Promise<void> {
    const path = this.imagePath(id);
    this.#unmountedStats.delete(id);
    if (existsSync(path)) return;
    await mkdir(this.opts.dir, { recursive: true, mode: 0o700 });
    const tmp = this.#tempPath(id);
    try {
      await run("zstd", ["-d", "-q", "--sparse", "-f", "-o", tmp], { input: compressed });
      if ((await stat(tmp)).size > bytes)
        throw new VolumeDiskError(
          `the snapshot is larger than the ${bytes / GIB} GB asked for`,
          "invalid_argument",
        );
      await allocate(tmp, bytes);
      await growOffline(tmp);
      await rename(tmp, path);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * Grows the volume to `bytes`: the file first, then the filesystem. A mounted one grows online when
   * the agent may (the loop device re-reads its file's size and resize2fs grows the mounted ext4: the
   * machine sees the new size at once); ext4 allows that only with CAP_SYS_RESOURCE, so an agent
   * without it leaves the filesystem to grow at its next mount, and says so (`online: false`).
   * Refuses to shrink.
   */
  async extend(id: string, bytes: number): Promise<{ online: boolean }> {
    const path = this.imagePath(id);
    this.#unmountedStats.delete(id);
    const st = await stat(path).catch(() => null);
    if (!st) throw new VolumeDiskError(`volume ${id} has no disk on this host`, "not_found");
    if (bytes < st.size)
      throw new VolumeDiskError(`volume ${id} is ${st.size} bytes; a volume only grows`, "invalid_argument");
    if (bytes > st.size) await allocate(path, bytes);
    const device = this.isMounted(id) ? await this.#loopDeviceOf(path) : null;
    if (!device) {
      await growOffline(path);
      return { online: true };
    }
    await run("losetup", ["-c", device]);
    if (!this.#onlineResize) return { online: false };
    await run("resize2fs", [device]);
    return { online: true };
  }

  /**
   * Attaches the volume to a loop device and mounts it (nosuid, nodev) at its mount point, reusing
   * what is already there: a machine that outlived its agent keeps the same device and mount.
   * Returns the mount point.
   */
  async mount(id: string): Promise<string> {
    const path = this.imagePath(id);
    this.#unmountedStats.delete(id);
    const target = this.mountPoint(id);
    if (!existsSync(path)) throw new VolumeDiskError(`volume ${id} has no disk on this host`, "not_found");
    if (isMountPoint(target)) return target;
    await mkdir(target, { recursive: true, mode: 0o700 });
    let device = await this.#loopDeviceOf(path);
    // An extend waits for this mount to grow the filesystem, so a device still attached is let go first.
    // It is on its way out: mount attached it with autoclear, and the old mount's last user (the
    // namespace of a machine being torn down) has not let go yet; or it was left by an agent that died
    // inside mount(8), unused, and goes at once. Reused as it is, the kernel would hand back the old,
    // smaller filesystem. One that outlives the wait is used again, and the growth waits for a later start.
    if (device && (await this.growPending(id))) {
      await run("losetup", ["-d", device], { allowFailure: true });
      device = await this.#untilDetached(path);
    }
    // A loop device left attached (by an agent that died between attaching and mounting) is used again.
    if (device) {
      await run("mount", ["-t", "ext4", "-o", "nosuid,nodev", device, target]);
      return target;
    }
    // An extend the agent could not apply online (or one made while unmounted) is applied here.
    await growOffline(path);
    await this.#mountOnNewLoop(path, target);
    return target;
  }

  /** Unmounts the volume and detaches its loop devices; nothing to do is no error. */
  async unmount(id: string): Promise<void> {
    const path = this.imagePath(id);
    this.#unmountedStats.delete(id);
    const target = this.mountPoint(id);
    if (isMountPoint(target)) {
      const { code } = await run("umount", [target], { allowFailure: true });
      // Busy (a process still holds a file): detached now, released when the last user lets go.
      if (code !== 0) await run("umount", ["-l", target]);
    }
    await rm(target, { recursive: true, force: true }).catch(() => {});
    for (const device of await loopDevicesOf(path))
      await run("losetup", ["-d", device], { allowFailure: true });
  }

  /** Detaches a loop device (at once, or when its last user lets go). */
  async detachDevice(device: string): Promise<void> {
    await run("losetup", ["-d", device], { allowFailure: true });
  }

  /** Removes the volume's disk; refused while it is mounted (a machine uses it). */
  async remove(id: string): Promise<void> {
    if (this.isMounted(id))
      throw new VolumeDiskError(`volume ${id} is mounted on this host; stop its machine first`, "conflict");
    const path = this.imagePath(id);
    this.#unmountedStats.delete(id);
    for (const device of await loopDevicesOf(path))
      await run("losetup", ["-d", device], { allowFailure: true });
    await rm(path, { force: true });
  }

  /** Whether the volume's file is larger than its filesystem: an extend that waits for the next mount. */
  async growPending(id: string): Promise<boolean> {
    const path = this.imagePath(id);
    const [{ size }, sb] = await Promise.all([stat(path), superblock(path)]);
    return sb.blocks * sb.blockSize < size;
  }

  /**
   * The volume's size and use: from the mounted filesystem, or its superblock when unmounted (read
   * once per change of the image).
   */
  async stat(id: string): Promise<VolumeStat> {
    const path = this.imagePath(id);
    const file = await stat(path).catch(() => null);
    if (!file) throw new VolumeDiskError(`volume ${id} has no disk on this host`, "not_found");
    const size_gb = file.size / GIB;
    if (this.isMounted(id)) {
      const fs = await statfs(this.mountPoint(id));
      return {
        size_gb,
        block_size: fs.bsize,
        blocks: fs.blocks,
        blocks_free: fs.bfree,
        blocks_avail: fs.bavail,
        used_bytes: (fs.blocks - fs.bfree) * fs.bsize,
        mounted: true,
      };
    }
    const cached = this.#unmountedStats.get(id);
    if (cached && cached.mtimeMs === file.mtimeMs && cached.size === file.size) return { ...cached.stat };
    const sb = await superblock(path);
    const figures: VolumeStat = {
      size_gb,
      block_size: sb.blockSize,
      // As statfs counts them for a mounted one: without the filesystem's own metadata.
      blocks: sb.blocks - sb.overhead,
      blocks_free: sb.free,
      blocks_avail: Math.max(0, sb.free - sb.reserved),
      used_bytes: (sb.blocks - sb.free) * sb.blockSize,
      mounted: false,
    };
    this.#unmountedStats.set(id, { mtimeMs: file.mtimeMs, size: file.size, stat: figures });
    return { ...figures };
  }

  /**
   * Copies the volume's image, sparse, to `dest`: a consistent copy, since a mounted volume is frozen
   * (fsfreeze: writes wait, the journal is flushed) for the copy and thawed after, whatever happens.
   * The freeze lasts at most freezeTimeoutMs: past it the copy is stopped and the snapshot fails.
   * Returns how long the volume was frozen (0 when it was not mounted).
   */
  async copyConsistent(id: string, dest: string): Promise<{ freezeMs: number }> {
    const path = this.imagePath(id);
    if (!existsSync(path)) throw new VolumeDiskError(`volume ${id} has no disk on this host`, "not_found");
    if (!this.isMounted(id)) {
      await run("cp", ["--sparse=always", path, dest]);
      return { freezeMs: 0 };
    }
    const target = this.mountPoint(id);
    const limit = this.opts.freezeTimeoutMs;
    // The loop device writes with direct I/O, so the image is not in the host's page cache: read it
    // in first, and the copy under the freeze reads from disk only what changed since (1.1 s -> 0.2 s
    // frozen for 128 MB in use, pnpm bench volumes).
    await run("dd", [`if=${path}`, "of=/dev/null", "bs=8M", "status=none"]);
    const started = performance.now();
    await run("fsfreeze", ["-f", target]);
    try {
      const left = Math.max(1, limit - (performance.now() - started));
      const { timedOut } = await run("cp", ["--sparse=always", path, dest], { timeoutMs: left });
      if (timedOut)
        throw new VolumeDiskError(
          `the copy of volume ${id} did not finish within the ${limit} ms freeze bound (HANGAR_HOST_AGENT_VOLUMES_FREEZE_TIMEOUT_MS); the volume was thawed`,
          "unavailable",
        );
    } finally {
      await run("fsfreeze", ["-u", target]);
    }
    return { freezeMs: performance.now() - started };
  }

  /** Where a volume is made before it gets its name: `.<id>.tmp-<random>`, which reconcile removes. */
  #tempPath(id: string): string {
    return join(this.opts.dir, `.${id}.tmp-${randomBytes(4).toString("hex")}`);
  }

  async #loopDeviceOf(path: string): Promise<string | null> {
    return (await loopDevicesOf(path))[0] ?? null;
  }

  /** Waits up to detachWaitMs for `path`'s loop devices to go; returns one still attached, or null. */
  async #untilDetached(path: string): Promise<string | null> {
    const deadline = Date.now() + (this.opts.detachWaitMs ?? 10_000);
    for (;;) {
      const device = await this.#loopDeviceOf(path);
      if (!device || Date.now() >= deadline) return device;
      await sleep(50);
    }
  }

  /**
   * Mounts `path` through a free loop device that mount attaches with autoclear: the device goes
   * with the filesystem's last user (an unmount, lazy or not, then the machine that still held it),
   * so nothing that unmounts a volume can leave its loop device behind.
   */
  async #mountOnNewLoop(path: string, target: string): Promise<void> {
    if (!existsSync(this.#loopControl))
      throw new VolumeDiskError(
        `this host has no loop devices (${this.#loopControl} is missing; load the loop module: modprobe loop), so it cannot attach volumes`,
        "unavailable",
      );
    const { code, stderr } = await run("mount", ["-t", "ext4", "-o", "loop,nosuid,nodev", path, target], {
      allowFailure: true,
    });
    if (code !== 0)
      throw new VolumeDiskError(
        `could not attach the volume to a loop device and mount it (is one free? mount: ${stderr.trim()})`,
        "unavailable",
      );
    // Direct I/O: the loop device writes the image file without a second copy in the host's page cache
    // (sequential writes in a machine 0.4x -> 0.8x of the host's, pnpm bench volumes). A backing
    // filesystem that refuses it (block size) keeps the buffered device, which is only slower.
    const device = await this.#loopDeviceOf(path);
    if (device) await run("losetup", ["--direct-io=on", device], { allowFailure: true });
  }
}

/** Grows (or makes) `file` to `bytes`, allocated: fallocate never shrinks and keeps what is written. */
async function allocate(file: string, bytes: number): Promise<void> {
  await run("fallocate", ["-l", String(bytes), file]);
}

/** Grows an unmounted volume's filesystem to its file's size, when it is smaller. */
async function growOffline(file: string): Promise<void> {
  const [{ size }, sb] = await Promise.all([stat(file), superblock(file)]);
  if (sb.blocks * sb.blockSize >= size) return;
  await checkFilesystem(file);
  await run("resize2fs", [file]);
}

/** Capability numbers (linux/capability.h). */
const CAP_SYS_RESOURCE = 24;

/** Whether this process has capability `cap` in effect (from /proc/self/status). */
function hasCapability(cap: number): boolean {
  const line = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
  return line?.[1] !== undefined && ((BigInt(`0x${line[1]}`) >> BigInt(cap)) & 1n) === 1n;
}

/** e2fsck before an offline resize, which resize2fs insists on; exit 1 (errors fixed) is fine. */
async function checkFilesystem(file: string): Promise<void> {
  const { code, stderr } = await run("e2fsck", ["-f", "-y", file], { allowFailure: true });
  if (code > 1)
    throw new VolumeDiskError(
      `e2fsck found errors it could not fix (exit ${code}): ${stderr.trim()}`,
      "internal",
    );
}

/** The loop devices backed by `file`, from losetup's JSON listing. */
export async function loopDevicesOf(file: string): Promise<string[]> {
  const all = await loopDevices();
  return all.filter((d) => d.file === file).map((d) => d.name);
}

/** Every loop device of the host and its backing file. */
export async function loopDevices(): Promise<Array<{ name: string; file: string }>> {
  const { code, stdout } = await run("losetup", ["--list", "--json", "-O", "NAME,BACK-FILE"], {
    allowFailure: true,
  });
  if (code !== 0 || stdout.trim() === "") return [];
  const parsed = JSON.parse(stdout) as { loopdevices?: Array<{ name: string; "back-file": string | null }> };
  return (parsed.loopdevices ?? []).map((d) => ({
    name: d.name,
    // losetup appends " (deleted)" when the file is gone.
    file: (d["back-file"] ?? "").replace(/ \(deleted\)$/, ""),
  }));
}

/** Block size, count, free and reserved blocks from an unmounted ext4's superblock. */
async function superblock(
  file: string,
): Promise<{ blockSize: number; blocks: number; free: number; reserved: number; overhead: number }> {
  const { stdout } = await run("dumpe2fs", ["-h", file]);
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(stdout)?.[1] ?? 0);
  return {
    blockSize: field("Block size"),
    blocks: field("Block count"),
    free: field("Free blocks"),
    reserved: field("Reserved block count"),
    overhead: field("Overhead clusters"),
  };
}
