import { createHash } from "node:crypto";
import { chmod, chown, mkdir, mkdtemp, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  chownToRange,
  type IdRange,
  mountIdmappedOverlay,
  type RuntimeBind,
  runTool,
  unmountIfMounted,
} from "@hangar/oci";
import { BuildError, type BuildFailureDetails } from "./domain/errors.js";
import type { CopySource } from "./domain/plan.js";
import type { RunMount } from "./domain/run-mounts.js";
import { resolveInRoot } from "./rootfs-files.js";

/*
 * What a RUN step's --mount flags and #! heredoc become on the host. crun makes the mounts as the
 * container's root, which cannot pass the builder's own folders (0700, host root's): every source is
 * first made visible under a folder of the step's own that belongs to the build's id range. Cache
 * folders are bound there as they are (their files already carry range ids); a bind's source is an
 * overlay of the context, stage or image seen through an idmapped mount (host root's files are the
 * container root's, and writes land in a throwaway upper); secrets and scripts are files on a tmpfs.
 */

/** What the step mounts need from the build. */
export interface StepMountContext {
  range: IdRange;
  /** The app's cache-mount folder (kept between builds); cache mounts are refused without one. */
  cacheDir: string | undefined;
  contextDir: string;
  /** The unpacked layer folders of a stage or image, top-most first. */
  lowersOf(source: Exclude<CopySource, { kind: "context" }>): Promise<string[]>;
  /** A build secret's value, or undefined when the build has none of that id. */
  secret(id: string): Promise<string | undefined>;
}

/** The mounts of one RUN, ready for its runtime spec; `release` undoes them all. */
export interface PreparedMounts {
  binds: RuntimeBind[];
  /** `NAME=value` entries for secrets mounted as environment variables. */
  env: string[];
  /** The secret values the step can see, to keep them out of its logged output. */
  secretValues: string[];
  release(): Promise<void>;
}

/** One RUN at a time per cache folder: BuildKit's sharing=locked, the safe reading of every mode. */
const cacheLocks = new Map<string, Promise<void>>();

async function lockCache(dir: string): Promise<() => void> {
  const before = cacheLocks.get(dir) ?? Promise.resolve();
  let unlock = () => {};
  const mine = new Promise<void>((resolve) => {
    unlock = resolve;
  });
  const chained = before.then(() => mine);
  cacheLocks.set(dir, chained);
  await before;
  return () => {
    unlock();
    if (cacheLocks.get(dir) === chained) cacheLocks.delete(dir);
  };
}

/** The host folder of a cache mount: one per app and cache id. */
export function cacheFolder(cacheDir: string, id: string): string {
  return join(cacheDir, createHash("sha256").update(id).digest("hex").slice(0, 32));
}

/** Makes the host side of a RUN's mounts and its #! script. */
export async function prepareStepMounts(
  mounts: RunMount<CopySource>[],
  script: { path: string; content: string } | undefined,
  ctx: StepMountContext,
  at: BuildFailureDetails,
): Promise<PreparedMounts> {
  const undo: Array<() => Promise<void>> = [];
  const binds: RuntimeBind[] = [];
  const env: string[] = [];
  const secretValues: string[] = [];
  const release = async () => {
    for (const u of undo.reverse()) await u().catch(() => undefined);
  };
  try {
    // A folder of the range's root, reachable by the container's root: the mount sources live here.
    const staging = await mkdtemp(join(tmpdir(), "hangar-build-mounts-"));
    await chownToRange(staging, ctx.range);
    // Never recursive where a mount may be: were an unmount to fail, it would go through it.
    undo.push(() => rmdir(staging));
    // Secrets and scripts never touch a disk: a 0700 folder of the range's root on /dev/shm.
    let files: string | undefined;
    const filesDir = async () => {
      if (files) return files;
      const dir = await mkdtemp("/dev/shm/hangar-build-files-");
      await chownToRange(dir, ctx.range);
      await chmod(dir, 0o700);
      undo.push(() => rm(dir, { recursive: true, force: true }));
      files = dir;
      return dir;
    };
    const writeOwned = async (name: string, content: string, mode: number, uid: number, gid: number) => {
      const file = join(await filesDir(), name);
      await writeFile(file, content, { mode: 0o600 });
      await chown(file, ctx.range.hostId + uid, ctx.range.hostId + gid);
      await chmod(file, mode);
      return file;
    };
    let n = 0;
    for (const m of mounts) {
      const point = join(staging, `m${++n}`);
      switch (m.type) {
        case "cache": {
          if (!ctx.cacheDir) {
            throw new BuildError(
              "mount_unavailable",
              `line ${at.line}: cache mounts need the build's app`,
              at,
            );
          }
          const dir = cacheFolder(ctx.cacheDir, m.id);
          const unlock = await lockCache(dir);
          undo.push(async () => unlock());
          if (!(await stat(dir).catch(() => undefined))) {
            await mkdir(dir, { recursive: true });
            await chown(dir, ctx.range.hostId + m.uid, ctx.range.hostId + m.gid);
            await chmod(dir, m.mode);
          }
          await mkdir(point);
          undo.push(() => rmdir(point));
          await runTool("mount", ["--bind", dir, point]);
          undo.push(() => unmountIfMounted(point));
          binds.push({ src: point, dest: m.target, readOnly: m.readOnly });
          break;
        }
        case "bind": {
          const lowers = m.from.kind === "context" ? [ctx.contextDir] : await ctx.lowersOf(m.from);
          const upper = join(staging, `u${n}`);
          const work = join(staging, `w${n}`);
          for (const d of [upper, work]) await chownToRange(d, ctx.range);
          undo.push(async () => {
            for (const d of [upper, work]) await rm(d, { recursive: true, force: true });
          });
          await mkdir(point);
          undo.push(() => rmdir(point));
          await mountIdmappedOverlay({ lowers, upper, work, target: point, range: ctx.range });
          undo.push(() => unmountIfMounted(point));
          const src = await resolveInRoot(point, m.source);
          if (!(await stat(src).catch(() => undefined))) {
            throw new BuildError(
              "copy_source_invalid",
              `line ${at.line}: --mount type=bind source ${m.source || "/"} is not in ${m.from.kind === "context" ? "the build context" : `the ${m.from.kind}`}`,
              at,
            );
          }
          binds.push({ src, dest: m.target, readOnly: !m.readWrite });
          break;
        }
        case "secret": {
          const value = await ctx.secret(m.id);
          if (value === undefined) {
            if (!m.required) break;
            throw new BuildError(
              "secret_missing",
              `line ${at.line}: the build has no secret ${m.id}: pass it with hangar deploy --build-secret id=${m.id},src=<file> or set the app secret ${m.id}`,
              at,
            );
          }
          secretValues.push(value);
          if (m.env) env.push(`${m.env}=${value}`);
          if (m.target) {
            const file = await writeOwned(`secret-${n}`, value, m.mode, m.uid, m.gid);
            binds.push({ src: file, dest: m.target, readOnly: true });
          }
          break;
        }
      }
    }
    if (script) {
      const file = await writeOwned("script", script.content, 0o755, 0, 0);
      binds.push({ src: file, dest: script.path, readOnly: true });
    }
    return { binds, env, secretValues, release };
  } catch (err) {
    await release();
    throw err;
  }
}
