import { createHash, type Hash } from "node:crypto";
import { createReadStream, type Stats } from "node:fs";
import {
  chmod,
  copyFile,
  lchown,
  lstat,
  lutimes,
  mkdir,
  readdir,
  readlink,
  rm,
  stat,
  symlink,
} from "node:fs/promises";
import { join, posix } from "node:path";
import { READ_AHEAD, readAhead, type TreeEntry, walkTree, walkTreeLoaded } from "@hangar/oci";
import { cleanSource, hasGlob, matchComponent } from "./domain/copy-rules.js";
import { type BuildFailureDetails, CopySourceError } from "./domain/errors.js";

/** Symlinks followed in one resolution before it counts as a loop, as the kernel's limit. */
const MAX_LINKS = 40;

/**
 * The host path of `path` inside a root filesystem, following symlinks as if `root` were `/`: an
 * absolute link target starts again at the root and `..` never climbs above it, so an image's links
 * can never lead the builder to the host's files.
 */
export async function resolveInRoot(root: string, path: string, followLast = true): Promise<string> {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  let resolved: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift() as string;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const candidate = join(root, ...resolved, part);
    if (followLast || parts.length > 0) {
      const st = await lstat(candidate).catch(() => undefined);
      if (st?.isSymbolicLink()) {
        if (++links > MAX_LINKS) throw new CopySourceError(`too many levels of symbolic links in ${path}`);
        const target = await readlink(candidate);
        if (target.startsWith("/")) resolved = [];
        parts.unshift(...target.split("/").filter((p) => p !== "" && p !== "."));
        continue;
      }
    }
    resolved.push(part);
  }
  return join(root, ...resolved);
}

/** Who copied files belong to: fixed ids, or the ids they have in the source. */
export type Owner = { uid: number; gid: number } | "preserve";

/**
 * Creates the directories of `path` inside `root` that do not exist yet (mode 0755, owned by
 * `owner` or root) and returns the directory's host path. Existing directories are left as they are.
 */
export async function mkdirInRoot(
  root: string,
  path: string,
  owner?: { uid: number; gid: number },
): Promise<string> {
  let current = "/";
  for (const part of path.split("/").filter((p) => p !== "" && p !== ".")) {
    const next = posix.join(current, part);
    const host = await resolveInRoot(root, next);
    const st = await stat(host).catch(() => undefined);
    if (st === undefined) {
      await mkdir(host, { mode: 0o755 });
      await chmod(host, 0o755);
      if (owner) await lchown(host, owner.uid, owner.gid);
    } else if (!st.isDirectory()) {
      throw new CopySourceError(`${next} exists in the image and is not a directory`);
    }
    current = next;
  }
  return resolveInRoot(root, current);
}

/** A source found in a root: its path as named (relative to the root) and whether it is a directory. */
export interface FoundSource {
  path: string;
  isDir: boolean;
}

/**
 * The files and directories one COPY source names in `root`, globs (`*`, `?`, `[...]`, per path
 * component) expanded. `where` names the root in errors ("the build context", "stage build").
 */
export async function findSources(
  root: string,
  source: string,
  where: string,
  at: BuildFailureDetails,
): Promise<FoundSource[]> {
  const clean = cleanSource(source, at);
  if (!hasGlob(clean)) {
    const st = await stat(await resolveInRoot(root, clean)).catch(() => undefined);
    if (st === undefined) throw new CopySourceError(`${source}: not found in ${where}`, at);
    return [{ path: clean, isDir: st.isDirectory() }];
  }
  let candidates = [""];
  for (const part of clean.split("/")) {
    const next: string[] = [];
    for (const dir of candidates) {
      if (hasGlob(part)) {
        const names = await readdir(await resolveInRoot(root, dir)).catch(() => [] as string[]);
        for (const name of names.sort()) if (matchComponent(part, name)) next.push(posix.join(dir, name));
      } else {
        const unescaped = part.replace(/\\(.)/g, "$1");
        const rel = posix.join(dir, unescaped);
        if (await stat(await resolveInRoot(root, rel)).catch(() => undefined)) next.push(rel);
      }
    }
    candidates = next;
  }
  if (candidates.length === 0) throw new CopySourceError(`${source}: no files match in ${where}`, at);
  const found: FoundSource[] = [];
  for (const path of candidates) {
    const st = await stat(await resolveInRoot(root, path));
    found.push({ path, isDir: st.isDirectory() });
  }
  return found;
}

/**
 * Copies `srcHost` (a file, symlink or directory on the host) to `destPath` inside `root`; a
 * directory's contents are merged into the destination directory. Modes and times are kept;
 * ownership is `owner`'s, or the source's with "preserve"; `mode` (COPY --chmod) replaces the mode
 * of every file and folder copied. Host paths in `leftOut` are not copied out of a directory.
 */
export async function copyIntoRoot(
  root: string,
  srcHost: string,
  destPath: string,
  owner: Owner,
  mode?: number,
  leftOut: ReadonlySet<string> = new Set(),
): Promise<void> {
  const st = await stat(srcHost);
  if (st.isDirectory()) {
    await copyDirContents(root, srcHost, destPath, owner, mode, leftOut);
    return;
  }
  // The destination's last component is replaced, never followed: a link there is overwritten.
  const parent = await mkdirInRoot(root, posix.dirname(destPath), owner === "preserve" ? undefined : owner);
  await copyEntry(srcHost, join(parent, posix.basename(destPath)), owner, true, mode);
}

/**
 * Copies a folder's contents, entries read ahead and copied with up to READ_AHEAD at once
 * (@hangar/oci's readAhead): a context of node_modules is tens of thousands of small files, and one
 * at a time their system calls' round trips to libuv's threads were most of a COPY's time. Each
 * folder is made before anything is copied into it; a folder this copy made is new, so nothing in it
 * needs replacing.
 */
async function copyDirContents(
  root: string,
  srcDir: string,
  destPath: string,
  owner: Owner,
  mode: number | undefined,
  leftOut: ReadonlySet<string>,
): Promise<void> {
  const dirOwner = owner === "preserve" ? undefined : owner;
  const top = await mkdirInRoot(root, destPath, dirOwner);
  /** Each source folder's destination (by `rel`), made before its entries are copied. */
  const dirs = new Map<string, Promise<CopiedDir>>([
    ["", Promise.resolve({ host: top, path: destPath, fresh: false })],
  ]);
  const destOf = (e: TreeEntry): Promise<CopiedDir> => {
    const dir = dirs.get(e.parent);
    if (dir === undefined) throw new Error(`${e.rel}: its folder was not copied first`);
    return dir;
  };
  // Called in the walk's order, a folder before its entries: a folder's promise is set before any await.
  const copyOne = async (e: TreeEntry): Promise<void> => {
    const parentDir = destOf(e);
    if (!e.isDirectory) {
      const parent = await parentDir;
      await copyEntry(e.abs, join(parent.host, e.name), owner, false, mode, !parent.fresh);
      return;
    }
    const made = (async (): Promise<CopiedDir> => {
      const parent = await parentDir;
      const st = await lstat(e.abs);
      const dest = join(parent.host, e.name);
      const path = posix.join(parent.path, e.name);
      const existing = parent.fresh ? undefined : await lstat(dest).catch(() => undefined);
      if (existing && !existing.isDirectory() && !existing.isSymbolicLink()) await rm(dest, { force: true });
      if (!existing || (!existing.isDirectory() && !existing.isSymbolicLink())) {
        await mkdir(dest);
        await applyMeta(dest, st, owner, false, mode);
        return { host: dest, path, fresh: true };
      }
      // A symlink to a directory in the image is followed, inside the root, as Docker does.
      return { host: await mkdirInRoot(root, path, dirOwner), path, fresh: false };
    })();
    dirs.set(e.rel, made);
    await made;
  };
  const entries = walkTree(srcDir, (e) => leftOut.has(e.abs));
  for await (const _ of readAhead(entries, READ_AHEAD, copyOne)) {
    // Each copy's failure surfaces here, in order.
  }
}

/** Where a source folder's entries go: its host path, its path in the root, and whether this copy made it. */
interface CopiedDir {
  host: string;
  path: string;
  fresh: boolean;
}

async function copyEntry(
  src: string,
  dest: string,
  owner: Owner,
  followSource: boolean,
  mode?: number,
  /** False when `dest` cannot exist (its folder was just made): no removal is tried first. */
  replace = true,
): Promise<void> {
  const st = followSource ? await stat(src) : await lstat(src);
  if (replace) await rm(dest, { recursive: true, force: true });
  if (st.isSymbolicLink()) {
    await symlink(await readlink(src), dest);
  } else if (st.isFile()) {
    await copyFile(src, dest);
  } else {
    // Sockets, devices and fifos do not belong in a build context or a copied tree.
    return;
  }
  await applyMeta(dest, st, owner, st.isSymbolicLink(), mode);
}

async function applyMeta(
  path: string,
  st: { mode: number; uid: number; gid: number; atime: Date; mtime: Date },
  owner: Owner,
  isLink: boolean,
  mode?: number,
): Promise<void> {
  const ids = owner === "preserve" ? { uid: st.uid, gid: st.gid } : owner;
  await lchown(path, ids.uid, ids.gid);
  if (!isLink) await chmod(path, mode ?? st.mode & 0o7777);
  await lutimes(path, st.atime, st.mtime);
}

/**
 * The digest of what COPY takes from a root: each source's path as named, and below it every
 * entry's relative path, type, mode, and content or link target. Owners and times are left out:
 * context files are copied as root, and a touch must not invalidate the cache.
 */
export async function digestSources(root: string, sources: FoundSource[]): Promise<string> {
  const h = createHash("sha256");
  for (const s of sources) {
    h.update(`source\0${s.path}\0`);
    await digestEntry(h, await resolveInRoot(root, s.path));
  }
  return `sha256:${h.digest("hex")}`;
}

async function digestEntry(h: Hash, host: string): Promise<void> {
  const st = await stat(host);
  await digestOne(h, "", host, st);
  // What is under a folder, lstats and small files read ahead, hashed in order.
  if (st.isDirectory())
    for await (const e of walkTreeLoaded(host, { readFiles: true }))
      await digestOne(h, e.rel, e.abs, e.st, e.content);
}

async function digestOne(h: Hash, rel: string, host: string, st: Stats, content?: Buffer): Promise<void> {
  const mode = (st.mode & 0o7777).toString(8);
  if (st.isDirectory()) {
    h.update(`dir\0${rel}\0${mode}\0`);
  } else if (st.isSymbolicLink()) {
    h.update(`link\0${rel}\0${await readlink(host)}\0`);
  } else if (st.isFile()) {
    h.update(`file\0${rel}\0${mode}\0${st.size}\0`);
    if (content) h.update(content);
    else for await (const chunk of createReadStream(host)) h.update(chunk as Buffer);
  }
}
