import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import type { Digest } from "./digest.js";
import { SystemToolError } from "./errors.js";
import { run } from "./exec.js";
import type { LayerStore } from "./layer-store.js";

let supported: Promise<boolean> | undefined;

/** True if this process can mount overlayfs (tried once, on a scratch mount). */
export function overlaySupported(): Promise<boolean> {
  supported ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), "hangar-overlay-probe-"));
    try {
      for (const d of ["lower", "upper", "work", "merged"]) await mkdir(join(dir, d));
      const m = await mountOverlay({
        lowers: [join(dir, "lower")],
        upper: join(dir, "upper"),
        work: join(dir, "work"),
        target: join(dir, "merged"),
      });
      await m.unmount();
      return true;
    } catch {
      return false;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return supported;
}

/**
 * Mounts overlayfs at `target` with `lowers` listed top-most first. Lowers that share a parent
 * directory (a LayerStore's) are passed relative to it from a `mount` run in that directory,
 * which keeps the option string under the kernel's one-page limit for images of many layers.
 */
export async function mountOverlay(o: {
  lowers: string[];
  upper: string;
  work: string;
  target: string;
  /** Extra mount options, e.g. nosuid and nodev for a machine's root filesystem. */
  options?: readonly string[];
}): Promise<{ unmount(): Promise<void> }> {
  const target = resolve(o.target);
  const lowers = o.lowers.length > 0 ? o.lowers.map((l) => resolve(l)) : [await emptyLower()];
  for (const p of [...lowers, o.upper, o.work]) {
    if (/[,:\\]/.test(p))
      throw new SystemToolError(`overlay path ${p} has a comma, colon or backslash; mount cannot take it`);
  }
  await mkdir(o.upper, { recursive: true });
  await mkdir(o.work, { recursive: true });
  await mkdir(target, { recursive: true });
  const parent = dirname(lowers[0] as string);
  const relative = lowers.every((l) => dirname(l) === parent);
  const lowerdir = relative ? lowers.map((l) => basename(l)).join(":") : lowers.join(":");
  const options = [
    `lowerdir=${lowerdir},upperdir=${resolve(o.upper)},workdir=${resolve(o.work)}`,
    ...(o.options ?? []),
  ].join(",");
  if (options.length > 4000) {
    throw new SystemToolError(
      `overlay mount options are ${options.length} bytes, over the kernel's 4 KiB limit; flatten the image`,
    );
  }
  await run("mount", ["-t", "overlay", "overlay", "-o", options, target], relative ? { cwd: parent } : {});
  return { unmount: () => unmountIfMounted(target) };
}

/** The unpacked folders of `layers` (an image's, bottom first), top-most first as overlayfs lists its lowers. */
export async function layerLowers(
  store: LayerStore,
  layers: readonly { digest: Digest }[],
): Promise<string[]> {
  const lowers = await Promise.all(layers.map((l) => store.dir(l.digest)));
  return lowers.reverse();
}

/**
 * Mounts an image's root filesystem at `target`: an overlay of its `layers` (the manifest's, bottom
 * first), each unpacked once by `store`, under `upper` and `work`, so writing to it changes no layer.
 * Returns its unmount.
 */
export async function mountImageRoot(
  store: LayerStore,
  layers: readonly { digest: Digest }[],
  o: { upper: string; work: string; target: string; options?: readonly string[] },
): Promise<{ unmount(): Promise<void> }> {
  return mountOverlay({ ...o, lowers: await layerLowers(store, layers) });
}

/** Unmounts whatever is mounted at `target`, if anything is. */
export async function unmountIfMounted(target: string): Promise<void> {
  const path = resolve(target);
  while (await isMountPoint(path)) await run("umount", [path]);
}

async function isMountPoint(path: string): Promise<boolean> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  // Field 5 is the mount point, with spaces and other specials written as octal escapes.
  return info.split("\n").some((line) => {
    const mountPoint = line.split(" ")[4];
    return (
      mountPoint !== undefined &&
      mountPoint.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))) ===
        path
    );
  });
}

/** An empty folder, the one lower of an overlay of no layers (overlayfs needs at least one). */
export async function emptyLower(): Promise<string> {
  const dir = join(tmpdir(), "hangar-empty-lower");
  await mkdir(dir, { recursive: true, mode: 0o755 });
  return dir;
}
