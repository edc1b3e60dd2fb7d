import { spawn } from "node:child_process";
import {
  closeSync,
  createReadStream,
  createWriteStream,
  fchmodSync,
  fchownSync,
  futimesSync,
  openSync,
  type Stats,
  writeSync,
} from "node:fs";
import {
  chmod,
  chown,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  readdir,
  readlink,
  rm,
  symlink,
  utimes,
} from "node:fs/promises";
import { join, resolve } from "node:path";
import { Duplex, Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import tar, { type Pack } from "tar-stream";
import { type Digest, DigestHasher } from "./digest.js";
import { LayerEntryError, LayerTooLargeError } from "./errors.js";
import { run } from "./exec.js";
import type { IdRange } from "./runtime/spec.js";
import { walkTreeLoaded } from "./tree-walk.js";
import { findOpaqueDirs, markOpaque } from "./xattr.js";

/** A layer written to disk: its compressed digest (what manifests name) and uncompressed diff id. */
export interface LayerFile {
  file: string;
  /** Digest of the .tar.gz. */
  digest: Digest;
  /** Digest of the uncompressed tar (the image config's rootfs.diff_ids). */
  diffId: Digest;
  /** Size of the .tar.gz in bytes. */
  size: number;
}

type TarHeader = Parameters<Pack["entry"]>[0];

const EMPTY = new Uint8Array(0);
const WHITEOUT = ".wh.";
const OPAQUE_MARKER = ".wh..wh..opq";

/**
 * Tars and gzips a directory into `outFile` as an OCI layer. With `overlayUpper`, the directory is an
 * overlayfs upper dir and its whiteouts and opaque dirs become OCI whiteout entries. `skip` gets
 * each path relative to `dir` without a leading slash (`app/node_modules`) and excludes it and what is under it.
 * `mtime` clamps newer mtimes to it; `gzipLevel` trades size for speed (zlib's default, 6, if unset).
 * With `idRange`, the directory was written from a user namespace mapping 0.. to `hostId`..: the
 * layer records the ids as the namespace saw them, and ids outside the range as root's (see hostToLayerId).
 */
export async function createLayer(
  dir: string,
  outFile: string,
  opts: {
    overlayUpper?: boolean;
    skip?: (p: string) => boolean;
    mtime?: Date;
    gzipLevel?: number;
    idRange?: IdRange;
  } = {},
): Promise<LayerFile> {
  const root = resolve(dir);
  const opaque = opts.overlayUpper ? await findOpaqueDirs(root) : new Set<string>();
  const diffId = new DigestHasher();
  const compressed = new DigestHasher();
  const pack = tar.pack();
  const writing = pipeline(
    pack,
    tap(diffId),
    createGzip({ level: opts.gzipLevel }),
    tap(compressed),
    createWriteStream(outFile),
  );
  writing.catch(() => {}); // awaited below; this only keeps an early failure from being "unhandled"
  const links = new Map<string, string>();
  const clamp = (d: Date): Date => (opts.mtime !== undefined && d > opts.mtime ? opts.mtime : d);

  const add = (header: TarHeader, content?: () => NodeJS.ReadableStream): Promise<void> =>
    new Promise((done, fail) => {
      const callback = (err?: Error | null) => (err ? fail(err) : done());
      if (content) content().once("error", fail).pipe(pack.entry(header, callback));
      else pack.entry(header, EMPTY, callback);
    });
  const addBytes = (header: TarHeader, bytes: Buffer): Promise<void> =>
    new Promise((done, fail) => {
      pack.entry(header, bytes, (err?: Error | null) => (err ? fail(err) : done()));
    });

  // Entries in order, each one's lstat and a small file's bytes read ahead (tree-walk.ts).
  const walk = async (): Promise<void> => {
    const entries = walkTreeLoaded(root, { skip: (e) => opts.skip?.(e.rel) === true, readFiles: true });
    for await (const { rel, parent, name, abs, st, content } of entries) {
      const base = {
        mode: st.mode & 0o7777,
        uid: hostToLayerId(st.uid, opts.idRange),
        gid: hostToLayerId(st.gid, opts.idRange),
        mtime: clamp(st.mtime),
      };
      if (st.isDirectory()) {
        await add({ ...base, name: `${rel}/`, type: "directory" });
        if (opaque.has(abs))
          await add({ ...base, name: `${rel}/${OPAQUE_MARKER}`, type: "file", mode: 0, size: 0 });
      } else if (opts.overlayUpper && st.isCharacterDevice() && st.rdev === 0) {
        const whiteout = parent === "" ? `${WHITEOUT}${name}` : `${parent}/${WHITEOUT}${name}`;
        await add({ ...base, name: whiteout, type: "file", mode: 0, size: 0 });
      } else if (st.isSymbolicLink()) {
        await add({ ...base, name: rel, type: "symlink", linkname: await readlink(abs) });
      } else if (st.isFile()) {
        const inode = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? links.get(inode) : undefined;
        if (first !== undefined) {
          await add({ ...base, name: rel, type: "link", linkname: first });
        } else {
          if (st.nlink > 1) links.set(inode, rel);
          const header: TarHeader = { ...base, name: rel, type: "file", size: st.size };
          await (content ? addBytes(header, content) : add(header, () => createReadStream(abs)));
        }
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const type = st.isCharacterDevice() ? "character-device" : "block-device";
        await add({ ...base, name: rel, type, ...deviceNumbers(st) });
      } else if (st.isFIFO()) {
        await add({ ...base, name: rel, type: "fifo" });
      }
      // Sockets cannot live in a tar; a process recreates them at run time anyway.
    }
  };

  try {
    await walk();
    pack.finalize();
  } catch (error) {
    pack.destroy(error as Error);
    await writing.catch(() => {});
    throw error;
  }
  await writing;
  return { file: outFile, digest: compressed.digest(), diffId: diffId.digest(), size: compressed.size };
}

/**
 * The id a layer records for a file owned by host id `id`. A process in the user namespace can only
 * make files owned by ids of its range; any other owner was set from the host (overlayfs's own
 * whiteouts, a directory the builder made), on the image's behalf: root's.
 */
function hostToLayerId(id: number, range: IdRange | undefined): number {
  if (range === undefined) return id;
  return id >= range.hostId && id < range.hostId + range.size ? id - range.hostId : 0;
}

/**
 * Applies a layer (.tar.gz, or plain tar) to `target`. Mode "flatten" (default) applies OCI whiteouts by
 * deleting what they hide; mode "overlay" unpacks the layer as an overlayfs lower dir, turning
 * whiteouts into 0/0 character devices and opaque markers into the overlay xattr. Entries that would
 * land outside `target` are refused with LayerEntryError. With `maxBytes`, a file that would take
 * the files' sizes past it is refused with LayerTooLargeError before it is written (a compressed
 * layer cannot unpack to more than it may).
 */
export async function applyLayer(
  src: AsyncIterable<Uint8Array> | NodeJS.ReadableStream,
  target: string,
  opts: { mode?: "flatten" | "overlay"; maxBytes?: number } = {},
): Promise<void> {
  let unpacked = 0;
  const root = resolve(target);
  const overlay = opts.mode === "overlay";
  await mkdir(root, { recursive: true });
  const extract = tar.extract();
  const feeding = feedLayer(src, extract);
  feeding.catch(() => {}); // awaited below; this only keeps an early failure from being "unhandled"

  const created = new Set<string>();
  /** Directories seen to be real ones in this unpack (ensureParents' cache). */
  const knownDirs = new Set<string>();
  /** Takes a path that is being removed or replaced, and what is under it, out of knownDirs. */
  const forget = (path: string): void => {
    if (!knownDirs.has(path)) return;
    const under = `${path}/`;
    for (const dir of knownDirs) if (dir === path || dir.startsWith(under)) knownDirs.delete(dir);
  };
  const dirTimes: Array<{ path: string; mtime: Date }> = [];
  const opaqueDirs: string[] = [];
  const asRoot = process.getuid?.() === 0;

  const own = async (path: string, h: TarHeader, symlinked = false): Promise<void> => {
    if (!asRoot) return;
    await (symlinked ? lchown : chown)(path, h.uid ?? 0, h.gid ?? 0);
  };

  try {
    for await (const entry of extract) {
      const h = entry.header;
      const parts = entryPath(h.name);
      if (parts.length === 0) {
        entry.resume();
        continue;
      }
      const rel = parts.join("/");
      const name = parts[parts.length - 1] as string;
      const parentRel = parts.slice(0, -1).join("/");
      const parent = await ensureParents(root, parts.slice(0, -1), h.name, knownDirs);
      const path = join(parent, name);

      if (name === OPAQUE_MARKER) {
        entry.resume();
        if (overlay) opaqueDirs.push(parent);
        else await clearLower(root, parentRel, created, forget);
        continue;
      }
      if (name.startsWith(WHITEOUT)) {
        entry.resume();
        const hidden = name.slice(WHITEOUT.length);
        const hiddenRel = parentRel === "" ? hidden : `${parentRel}/${hidden}`;
        entryPath(hiddenRel); // a whiteout of ".." is as much an escape as any other
        if (created.has(hiddenRel)) continue; // whiteouts hide only what lower layers had
        forget(join(parent, hidden));
        await rm(join(parent, hidden), { recursive: true, force: true });
        if (overlay) await run("mknod", ["-m", "0", join(parent, hidden), "c", "0", "0"]);
        continue;
      }

      const mode = (h.mode ?? 0o644) & 0o7777;
      const mtime = h.mtime ?? new Date(0);
      if (h.type === "directory") {
        entry.resume();
        const existing = knownDirs.has(path) ? undefined : await lstat(path).catch(() => undefined);
        if (existing && !existing.isDirectory()) await rm(path, { force: true });
        if (!knownDirs.has(path) && !existing?.isDirectory()) await mkdir(path);
        knownDirs.add(path);
        await own(path, h);
        await chmod(path, mode);
        dirTimes.push({ path, mtime });
        created.add(rel);
        continue;
      }

      const size = h.size ?? 0;
      if ((h.type === "file" || h.type === "contiguous-file") && size <= SMALL_FILE) {
        unpacked += size;
        if (opts.maxBytes !== undefined && unpacked > opts.maxBytes) {
          entry.resume();
          throw new LayerTooLargeError(opts.maxBytes);
        }
        const data = await readEntry(entry, size);
        // Over what the path holds (an entry earlier in this layer, or a lower one when flattening).
        if (!writeSmallFile(path, data, h, asRoot)) {
          forget(path);
          await rm(path, { recursive: true, force: true });
          if (!writeSmallFile(path, data, h, asRoot)) {
            throw new LayerEntryError(`layer entry ${h.name}: ${path.slice(root.length)} is in the way`);
          }
        }
        created.add(rel);
        continue;
      }
      forget(path);
      await rm(path, { recursive: true, force: true });
      switch (h.type) {
        case "file":
        case "contiguous-file":
          unpacked += size;
          if (opts.maxBytes !== undefined && unpacked > opts.maxBytes)
            throw new LayerTooLargeError(opts.maxBytes);
          await pipeline(entry, createWriteStream(path, { mode: 0o600 }));
          break;
        case "symlink":
          entry.resume();
          await symlink(h.linkname ?? "", path);
          break;
        case "link": {
          entry.resume();
          const linkParts = entryPath(h.linkname ?? "");
          const linkParent = await ensureParents(root, linkParts.slice(0, -1), h.linkname ?? "", knownDirs);
          const linkTarget = join(linkParent, linkParts[linkParts.length - 1] ?? "");
          const st = await lstat(linkTarget).catch(() => undefined);
          if (!st || st.isDirectory()) {
            throw new LayerEntryError(
              `hard link ${h.name} points at ${h.linkname}, which is not a file in the layer`,
            );
          }
          await link(linkTarget, path);
          created.add(rel);
          continue; // a hard link shares its target's owner, mode and times
        }
        case "character-device":
        case "block-device":
          entry.resume();
          await run("mknod", [
            path,
            h.type === "character-device" ? "c" : "b",
            `${h.devmajor ?? 0}`,
            `${h.devminor ?? 0}`,
          ]);
          break;
        case "fifo":
          entry.resume();
          await run("mkfifo", [path]);
          break;
        default:
          entry.resume();
          throw new LayerEntryError(`layer entry ${h.name} has type ${h.type}, which a layer cannot hold`);
      }
      created.add(rel);
      if (h.type === "symlink") {
        await own(path, h, true);
        await lutimes(path, mtime, mtime);
      } else {
        await own(path, h);
        await chmod(path, mode); // after chown, which clears setuid and setgid bits
        await utimes(path, mtime, mtime);
      }
    }
  } catch (error) {
    extract.destroy();
    await feeding.catch(() => {});
    throw error;
  }
  await feeding;
  await markOpaque(opaqueDirs);
  // Last, deepest first: creating entries inside a directory moves its mtime.
  for (const { path, mtime } of dirTimes.reverse()) await utimes(path, mtime, mtime);
}

/**
 * Feeds a layer's tar (.tar.gz, .tar+zstd or plain tar, told apart by their first bytes) into
 * `extract`; resolves when all of it went in.
 */
export async function feedLayer(
  src: AsyncIterable<Uint8Array> | NodeJS.ReadableStream,
  extract: ReturnType<typeof tar.extract>,
): Promise<void> {
  let peeked: Awaited<ReturnType<typeof peek>>;
  try {
    peeked = await peek(src as AsyncIterable<Uint8Array>, 4);
  } catch (error) {
    // Whoever reads `extract`'s entries hears of it, rather than waiting for entries that never come.
    extract.destroy(error as Error);
    throw error;
  }
  const { head, rest } = peeked;
  const gzipped = head[0] === 0x1f && head[1] === 0x8b;
  return gzipped
    ? // 256 KiB output chunks, not zlib's 16 KiB: the tar parser's cost is per chunk (10x faster unpacks).
      pipeline(Readable.from(rest), createGunzip({ chunkSize: 1 << 18 }), extract)
    : head.length >= 4 && head.readUInt32LE(0) === ZSTD_MAGIC
      ? pipeline(Readable.from(rest), zstdDecompress(), extract)
      : pipeline(Readable.from(rest), extract);
}

/** The path components of a tar entry name; refuses absolute names and `..`. */
export function entryPath(name: string): string[] {
  if (name.startsWith("/"))
    throw new LayerEntryError(`layer entry ${name} has an absolute path; layers hold relative paths`);
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new LayerEntryError(`layer entry ${name} climbs out of the root with ".."`);
  return parts;
}

/**
 * Makes sure the parent directories exist as real directories, never following a symlink out of the
 * root. `known` holds directories this unpack has already seen to be real ones (it adds to it); the
 * caller takes out any path it replaces, and what is under it.
 */
async function ensureParents(
  root: string,
  parts: string[],
  entryName: string,
  known: Set<string> = new Set(),
): Promise<string> {
  let dir = root;
  for (const part of parts) {
    dir = join(dir, part);
    if (known.has(dir)) continue;
    const st = await lstat(dir).catch(() => undefined);
    if (st === undefined) await mkdir(dir, { mode: 0o755 });
    else if (st.isSymbolicLink()) {
      throw new LayerEntryError(
        `layer entry ${entryName} goes through the symlink ${dir.slice(root.length)}; refused`,
      );
    } else if (!st.isDirectory()) {
      throw new LayerEntryError(
        `layer entry ${entryName} goes through ${dir.slice(root.length)}, which is not a directory`,
      );
    }
    known.add(dir);
  }
  return dir;
}

/** Files up to this size are read whole and written through one descriptor (see writeSmallFile). */
const SMALL_FILE = 1 << 20;

/**
 * Writes a small file of a layer with its owner, mode and times through one descriptor: opened with
 * O_CREAT|O_EXCL (never through a symlink or over an entry), written, chowned, chmodded and timed,
 * then closed. Synchronous calls: each is microseconds, where the same through the thread pool cost
 * an unpack of thousands of small files most of its time. Returns false when the path exists.
 */
function writeSmallFile(path: string, data: Buffer, h: TarHeader, asRoot: boolean): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at);
    if (asRoot) fchownSync(fd, h.uid ?? 0, h.gid ?? 0);
    fchmodSync(fd, (h.mode ?? 0o644) & 0o7777); // after chown, which clears setuid and setgid bits
    const mtime = h.mtime ?? new Date(0);
    futimesSync(fd, mtime, mtime);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** The whole of a tar entry's body. */
async function readEntry(entry: AsyncIterable<unknown>, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of entry) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
}

/** An opaque directory in flatten mode: removes what lower layers had in it, keeping this layer's own entries. */
async function clearLower(
  root: string,
  rel: string,
  created: Set<string>,
  forget: (path: string) => void,
): Promise<void> {
  for (const child of await readdir(join(root, rel))) {
    const childRel = rel === "" ? child : `${rel}/${child}`;
    if (!created.has(childRel)) {
      forget(join(root, childRel));
      await rm(join(root, childRel), { recursive: true, force: true });
    } else if ((await lstat(join(root, childRel))).isDirectory())
      await clearLower(root, childRel, created, forget);
  }
}

/** Reads at least `n` bytes off the front of a stream and gives back a stream that still starts with them. */
/** The first four bytes of a zstd frame, read little-endian (layers of media type `...tar+zstd`). */
const ZSTD_MAGIC = 0xfd2fb528;

/**
 * A zstd decompressor as a stream: Debian's zstd binary, since Node 20's zlib has no zstd. Its exit
 * status is checked, so a truncated or corrupt frame fails the unpack instead of ending it early.
 */
function zstdDecompress(): Duplex {
  const child = spawn("zstd", ["-dc", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
  const stderr: Buffer[] = [];
  child.stderr.on("data", (b: Buffer) => stderr.push(b));
  const exited = new Promise<void>((resolve, reject) => {
    child.once("error", (error) =>
      reject(new LayerEntryError(`cannot unpack a zstd layer: ${error.message} (install zstd)`)),
    );
    child.once("close", (code) =>
      code === 0
        ? resolve()
        : reject(
            new LayerEntryError(`zstd layer does not decompress: ${Buffer.concat(stderr).toString().trim()}`),
          ),
    );
  });
  exited.catch(() => {});
  const out = child.stdout;
  const readable = Readable.from(
    (async function* () {
      for await (const chunk of out) yield chunk as Buffer;
      await exited;
    })(),
  );
  return Duplex.from({ writable: child.stdin, readable });
}

async function peek(
  src: AsyncIterable<Uint8Array>,
  n: number,
): Promise<{ head: Buffer; rest: AsyncIterable<Uint8Array> }> {
  const it = src[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  while (head.length < n) {
    const r = await it.next();
    if (r.done) break;
    head = Buffer.concat([head, typeof r.value === "string" ? Buffer.from(r.value) : r.value]);
  }
  const rest = (async function* () {
    if (head.length > 0) yield head;
    while (true) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  })();
  return { head, rest };
}

function tap(hasher: DigestHasher): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hasher.update(chunk);
      cb(null, chunk);
    },
  });
}

// Linux's dev_t encoding (glibc's gnu_dev_major/minor).
function deviceNumbers(st: Stats): { devmajor: number; devminor: number } {
  const rdev = BigInt(st.rdev);
  return {
    devmajor: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    devminor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
  };
}
