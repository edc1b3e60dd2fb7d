import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { chmod, mkdir, readFile, rm, rmdir } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { mountOverlay, unmountIfMounted } from "@hangar/oci";
import { writeJsonAtomic } from "./state.js";

/** rootfs.json: what the machine's writable layer was made for. */
interface RootfsRecord {
  /** Machine version and image: a different one needs a fresh upper. */
  key: string;
  lowers: string[];
}

/**
 * Where root filesystems are mounted. Not in the state folder: a machine that runs as a non-root USER
 * starts bwrap as that user, who must be able to reach the mount point, and state folders may sit
 * under /root or a mkdtemp folder (0700). Everything on the way here is 0755.
 */
export const ROOTFS_MOUNT_BASE = "/run/hangar/rootfs";

/** The folder the root filesystems of the machines of `stateDir` are mounted in: one per state folder. */
export function rootfsMountRoot(stateDir: string): string {
  return join(ROOTFS_MOUNT_BASE, createHash("sha256").update(resolve(stateDir)).digest("hex").slice(0, 16));
}

/**
 * The folders of a machine's root filesystem: the mount point under ROOTFS_MOUNT_BASE, derived from
 * the machine's state folder alone so that an agent that takes over finds a root filesystem still
 * mounted; the writable layer and the record in the state folder.
 */
export function rootfsPaths(machineDir: string) {
  const dir = resolve(machineDir);
  return {
    target: join(rootfsMountRoot(dirname(dir)), basename(dir)),
    /** Where root filesystems were mounted before ROOTFS_MOUNT_BASE: unmounted if still there, never mounted. */
    legacyTarget: join(dir, "rootfs"),
    upper: join(machineDir, "upper"),
    work: join(machineDir, "work"),
    record: join(machineDir, "rootfs.json"),
  };
}

/** Undoes the octal escapes (\040 for a space, ...) of /proc/self/mountinfo paths. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** The mount points of this mount namespace. */
export function mountPoints(): string[] {
  const text = readFileSync("/proc/self/mountinfo", "utf8");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => unescapeMountPath(line.split(" ")[4] ?? ""));
}

/** Whether something is mounted at `path` (exactly there). */
export function isMountPoint(path: string): boolean {
  return mountPoints().includes(path);
}

async function readRecord(path: string): Promise<RootfsRecord | null> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as RootfsRecord;
  } catch {
    return null;
  }
}

/**
 * Makes sure the machine's root filesystem is mounted (see rootfsPaths): an overlay of the
 * image's layers (top first) under a writable upper in the state folder. The upper survives stops and
 * starts of the same machine version and image, as a Fly machine's rootfs does; a new `key` (update
 * to a new version or image) starts from a fresh one. Returns the mount point.
 */
export async function prepareRootfs(
  machineDir: string,
  key: string,
  lowers: readonly string[],
): Promise<string> {
  const paths = rootfsPaths(machineDir);
  const record = await readRecord(paths.record);
  const same = record !== null && record.key === key && sameList(record.lowers, lowers);
  if (same && isMountPoint(paths.target)) return paths.target;
  await unmountIfMounted(paths.target);
  await unmountIfMounted(paths.legacyTarget);
  if (!same) {
    // Overlay forbids reusing an upper over other lowers; the new version starts clean anyway.
    await rm(paths.upper, { recursive: true, force: true });
    await rm(paths.work, { recursive: true, force: true });
    await writeJsonAtomic(paths.record, { key, lowers: [...lowers] } satisfies RootfsRecord);
  }
  for (const dir of [paths.upper, paths.work]) await mkdir(dir, { recursive: true, mode: 0o755 });
  await mkdirTraversable(paths.target);
  await mountOverlay({ lowers: [...lowers], upper: paths.upper, work: paths.work, target: paths.target });
  return paths.target;
}

/**
 * Unmounts the machine's root filesystem, if mounted, and removes its mount point; its other folders
 * go with the state folder. The state folder's mount root stays: removing it could race a start of
 * another machine of the same folder.
 */
export async function releaseRootfs(machineDir: string): Promise<void> {
  const paths = rootfsPaths(machineDir);
  await unmountIfMounted(paths.target);
  await unmountIfMounted(paths.legacyTarget);
  await rmdir(paths.target).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
}

/** Creates `dir` and its missing parents, each 0755 whatever the umask says. */
async function mkdirTraversable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: 0o755 });
  if (first === undefined) return;
  for (let d = dir; d.length >= first.length; d = dirname(d)) await chmod(d, 0o755);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
