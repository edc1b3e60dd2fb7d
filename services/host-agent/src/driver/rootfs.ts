import { createHash } from "node:crypto";
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { chmod, chown, lstat, mkdir, readFile, readlink, realpath, rm, symlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { type IdRange, mountIdmappedOverlay, runTool as run, unmountIfMounted } from "@hangar/oci";
import { writeJsonAtomic } from "./state.js";

/** rootfs.json: what the machine's writable layer was made for. */
interface RootfsRecord {
  /** Machine version, image and id range: a different one needs a fresh upper. */
  key: string;
  lowers: string[];
}

/**
 * Where root filesystems are mounted. Not in the state folder: crun sets a machine's root up from
 * inside its user namespace, as the range's root, which must be able to reach it, and state folders
 * may sit under /root or a mkdtemp folder (0700, host root's). The way here is 0711 (traversable, not
 * listable); each machine's folder is 0700 and belongs to its range's root, so no other host user
 * and no other tenant reaches into it.
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
  const home = join(rootfsMountRoot(dirname(dir)), basename(dir));
  return {
    /** The machine's 0700 folder, its range root's; before crun, the root filesystem was mounted here. */
    home,
    target: join(home, "root"),
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
 * Makes sure the machine's root filesystem is mounted (see rootfsPaths): an overlay (nosuid, nodev) of
 * the image's layers (top first), each seen through an idmapped mount into the machine's id range,
 * under a writable upper in the state folder owned by that range. The upper survives stops and starts
 * of the same machine version, image and range, as a Fly machine's rootfs does; a new `key` (update
 * to a new version or image) starts from a fresh one. Returns the mount point.
 */
export async function prepareRootfs(
  machineDir: string,
  key: string,
  lowers: readonly string[],
  range: IdRange,
): Promise<string> {
  const paths = rootfsPaths(machineDir);
  const fullKey = `${key} ids:${range.hostId}`;
  const record = await readRecord(paths.record);
  const same = record !== null && record.key === fullKey && sameList(record.lowers, lowers);
  if (same && isMountPoint(paths.target)) return paths.target;
  await unmountTree(paths.home);
  await unmountIfMounted(paths.legacyTarget);
  if (!same) {
    // Overlay forbids reusing an upper over other lowers; the new version starts clean anyway.
    await rm(paths.upper, { recursive: true, force: true });
    await rm(paths.work, { recursive: true, force: true });
    await writeJsonAtomic(paths.record, { key: fullKey, lowers: [...lowers] } satisfies RootfsRecord);
  }
  for (const dir of [paths.upper, paths.work]) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chownSync(dir, range.hostId, range.hostId);
  }
  machineHome(paths.home, paths.target, range);
  await mountIdmappedOverlay({ lowers, upper: paths.upper, work: paths.work, target: paths.target, range });
  return paths.target;
}

/** Host folders a `dir:` machine sees read-only: the host's programs and libraries, and its /etc. */
const HOST_VIEW = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"];

/**
 * The root of a `dir:` machine (development only): a folder of the range's root holding read-only,
 * nosuid, nodev binds of the host's programs (/usr, /etc, ...; their symlinks, as on a merged-/usr
 * host, are copied as symlinks) and the app's folder at its own path, writable only as its
 * permissions allow the range's ids. Bound here by host root: crun, in the user namespace, could
 * not reach an app folder under a 0700 folder of host root's. Returns the root.
 */
export async function prepareHostView(machineDir: string, appDir: string, range: IdRange): Promise<string> {
  // Resolved again at every start: a link swapped in since the folder was admitted must not bind
  // the host's root (or its /etc) into the machine read-write.
  const app = await realpath(resolve(appDir));
  // The host's root bound over the machine's would hand the machine the whole host.
  if (app === "/" || HOST_VIEW.some((name) => app === `/${name}` || app.startsWith(`/${name}/`)))
    throw new Error(
      `the app folder ${app} is, or is inside, a host system folder; a dir: machine cannot run it`,
    );
  const paths = rootfsPaths(machineDir);
  const key = `dir:${app} ids:${range.hostId}`;
  const record = await readRecord(paths.record);
  // The view outlives a run, as an image's overlay does: the next start of the same folder reuses it.
  if (record?.key === key && isMountPoint(join(paths.target, app)) && isMountPoint(join(paths.target, "usr")))
    return paths.target;
  await unmountTree(paths.home);
  await unmountIfMounted(paths.legacyTarget);
  // Never remove through a bind that is still there: it would reach the app's folder or the host's.
  if (stillMounted(paths.home)) throw new Error(`${paths.home} still has mounts; not removing its root`);
  await rm(paths.target, { recursive: true, force: true });
  machineHome(paths.home, paths.target, range);
  await chown(paths.target, range.hostId, range.hostId);
  const binds: string[][] = [];
  for (const name of HOST_VIEW) {
    const st = await lstat(join("/", name)).catch(() => null);
    if (!st) continue;
    const at = join(paths.target, name);
    if (st.isSymbolicLink()) {
      await symlink(await readlink(join("/", name)), at);
    } else if (st.isDirectory()) {
      await mkdir(at);
      // Not --rbind: util-linux makes only the top mount read-only, and what is mounted below the
      // host's /usr or /etc is not the machine's to see.
      binds.push(["--bind", "-o", "ro,nosuid,nodev", join("/", name), at]);
    }
  }
  const tmp = join(paths.target, "tmp");
  await mkdir(tmp);
  await chmod(tmp, 0o1777);
  const at = join(paths.target, app);
  await mkdir(at, { recursive: true });
  binds.push(["--bind", "-o", "nosuid,nodev", app, at]);
  // At once: none is inside another (the app folder is in no host folder of the view, checked above).
  // Every mount settles before a failure is reported, so none lands after the caller cleans up.
  const mounted = await Promise.allSettled(binds.map((args) => run("mount", args)));
  const failed = mounted.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  await writeJsonAtomic(paths.record, { key, lowers: [] } satisfies RootfsRecord);
  return paths.target;
}

/**
 * Creates the machine's 0700 folder, owned by its range's root, and its root folder inside. A dozen
 * metadata calls on the host's own folders, made synchronously: on a start's path, each as a
 * threadpool round trip waited behind a busy event loop (tens of ms each with starts under way).
 */
function machineHome(home: string, target: string, range: IdRange): void {
  mkdirTraversable(dirname(home));
  mkdirSync(home, { recursive: true, mode: 0o700 });
  chmodSync(home, 0o700);
  chownSync(home, range.hostId, range.hostId);
  mkdirSync(target, { recursive: true, mode: 0o755 });
}

/** Unmounts everything mounted at or under `path`, deepest first. */
export async function unmountTree(path: string): Promise<void> {
  const prefix = `${resolve(path)}/`;
  const under = mountPoints()
    .filter((p) => p === resolve(path) || p.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
  for (const p of under) await run("umount", ["-l", p], { allowFailure: true });
}

/**
 * Unmounts the machine's root filesystem, if mounted, and removes its mount point; its other folders
 * go with the state folder. The state folder's mount root stays: removing it could race a start of
 * another machine of the same folder.
 */
export async function releaseRootfs(machineDir: string): Promise<void> {
  const paths = rootfsPaths(machineDir);
  await unmountTree(paths.home);
  await unmountIfMounted(paths.legacyTarget);
  // Only once nothing is mounted below: a dir: machine's root holds binds of host folders.
  if (stillMounted(paths.home)) return;
  await rm(paths.home, { recursive: true, force: true });
}

/** Whether anything is mounted at or under `path`. */
function stillMounted(path: string): boolean {
  const dir = resolve(path);
  return mountPoints().some((p) => p === dir || p.startsWith(`${dir}/`));
}

/**
 * Creates `dir` and its missing parents, each 0711 (traversable, not listable) whatever the umask
 * says, and lets others traverse every parent it already had. The machine's root is a mapped uid of
 * its own user namespace: crun cannot reach a rootfs under a parent closed to it (`make ... private:
 * Permission denied`), and another part may have made a parent first (crun's state dir makes
 * /run/hangar 0700), so which part ran first on a host must not decide whether machines start.
 */
function mkdirTraversable(dir: string): void {
  const first = mkdirSync(dir, { recursive: true, mode: 0o711 });
  if (first !== undefined) {
    for (let d = dir; d.length >= first.length; d = dirname(d)) chmodSync(d, 0o711);
  }
  for (let d = dirname(dir); d !== dirname(d); d = dirname(d)) {
    const mode = statSync(d).mode & 0o7777;
    if ((mode & 0o011) !== 0o011) chmodSync(d, mode | 0o011);
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
