import { readFileSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { mountOverlay, unmountIfMounted } from "@hangar/oci";
import { writeJsonAtomic } from "./state.js";

/** rootfs.json: what the machine's writable layer was made for. */
interface RootfsRecord {
  /** Machine version and image: a different one needs a fresh upper. */
  key: string;
  lowers: string[];
}

/** The folders of a machine's root filesystem inside its state folder. */
export function rootfsPaths(machineDir: string) {
  return {
    target: join(machineDir, "rootfs"),
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
 * Makes sure the machine's root filesystem is mounted at `<machineDir>/rootfs`: an overlay of the
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
  if (!same) {
    // Overlay forbids reusing an upper over other lowers; the new version starts clean anyway.
    await rm(paths.upper, { recursive: true, force: true });
    await rm(paths.work, { recursive: true, force: true });
    await writeJsonAtomic(paths.record, { key, lowers: [...lowers] } satisfies RootfsRecord);
  }
  for (const dir of [paths.upper, paths.work, paths.target])
    await mkdir(dir, { recursive: true, mode: 0o755 });
  await mountOverlay({ lowers: [...lowers], upper: paths.upper, work: paths.work, target: paths.target });
  return paths.target;
}

/** Unmounts the machine's root filesystem, if mounted; its folders go with the state folder. */
export async function releaseRootfs(machineDir: string): Promise<void> {
  await unmountIfMounted(rootfsPaths(machineDir).target);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
