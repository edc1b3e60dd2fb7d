import tar from "tar-stream";
import { entryPath, feedLayer } from "./layer.js";

/** Which files of an image to read, and how much of them at most. */
export interface ImageFilesOptions {
  /** The folders to read, as path components (`["app", "public"]`); `[]` is the whole image. */
  folders: readonly (readonly string[])[];
  /** A bigger file is left out, with a warning. */
  maxFileBytes: number;
  /** Files past this many bytes in all are left out, with a warning. */
  maxTotalBytes: number;
  /** Files past this many are left out, with a warning. */
  maxFiles: number;
}

/** The regular files found under the folders, by path relative to the image's root (`app/public/a.css`). */
export interface ImageFiles {
  files: Map<string, Buffer>;
  /** What was left out and why: symlinks (never followed), files over the limits, odd entries. */
  warnings: string[];
}

/** A longer path is left out: a manifest of many long names would cost its readers (the proxy) dearly. */
export const MAX_STATIC_PATH_BYTES = 1024;

/** Warnings kept at most; the rest are counted in the last one. */
const MAX_WARNINGS = 20;

/**
 * Reads the regular files under `folders` out of an image's layers (each a .tar.gz, .tar+zstd or
 * tar stream, bottom first), applying each layer's whiteouts and opaque folders to what lower
 * layers gave, as a runtime's rootfs would show them. Symlinks are not followed (nor served): a
 * link cannot take a file from outside the folders. A hard link gives its target's bytes only when
 * that target is itself a file read under the folders.
 */
export async function readImageFiles(
  layers: AsyncIterable<AsyncIterable<Uint8Array>>,
  opts: ImageFilesOptions,
): Promise<ImageFiles> {
  const prefixes = opts.folders.map((f) => f.join("/"));
  const under = (rel: string): boolean =>
    prefixes.some((p) => p === "" || rel === p || rel.startsWith(`${p}/`));
  // An entry that replaces a folder on the way to one of the prefixes (app as a symlink) hides it all.
  const aboveOrUnder = (rel: string): boolean => under(rel) || prefixes.some((p) => p.startsWith(`${rel}/`));

  const files = new Map<string, Buffer>();
  const warnings: string[] = [];
  let dropped = 0;
  let total = 0;
  const warn = (text: string): void => {
    if (warnings.length < MAX_WARNINGS) warnings.push(text);
    else dropped++;
  };
  // How many files each folder holds (at any depth): a removal scans the files only for a folder.
  const folderFiles = new Map<string, number>();
  const ancestors = (path: string): string[] => {
    const parts = path.split("/");
    return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"));
  };
  const add = (path: string, bytes: Buffer): void => {
    files.set(path, bytes);
    total += bytes.length;
    for (const folder of ["", ...ancestors(path)])
      folderFiles.set(folder, (folderFiles.get(folder) ?? 0) + 1);
  };
  const drop = (path: string): void => {
    const bytes = files.get(path);
    if (bytes === undefined) return;
    files.delete(path);
    total -= bytes.length;
    for (const folder of ["", ...ancestors(path)]) {
      const n = (folderFiles.get(folder) ?? 1) - 1;
      if (n === 0) folderFiles.delete(folder);
      else folderFiles.set(folder, n);
    }
  };
  /** Removes the file at `rel` and every file under the folder `rel` ("" is the root), but those in `keep`. */
  const remove = (rel: string, keep?: ReadonlySet<string>): void => {
    if (!keep?.has(rel)) drop(rel);
    if (!folderFiles.has(rel)) return;
    for (const path of [...files.keys()]) {
      if ((rel === "" || path.startsWith(`${rel}/`)) && !keep?.has(path)) drop(path);
    }
  };

  for await (const layer of layers) {
    const created = new Set<string>();
    const extract = tar.extract();
    const feeding = feedLayer(layer, extract);
    feeding.catch(() => {});
    try {
      for await (const entry of extract) {
        const h = entry.header;
        let parts: string[];
        try {
          parts = entryPath(h.name);
        } catch {
          entry.resume();
          warn(`layer entry ${h.name} leaves the image's root: skipped`);
          continue;
        }
        const name = parts[parts.length - 1];
        if (name === undefined) {
          entry.resume();
          continue;
        }
        const parent = parts.slice(0, -1).join("/");
        if (name === ".wh..wh..opq") {
          entry.resume();
          // What lower layers had in the folder goes; this layer's own entries stay.
          if (aboveOrUnder(parent) || parent === "") remove(parent, created);
          continue;
        }
        if (name.startsWith(".wh.")) {
          entry.resume();
          const hidden = parent === "" ? name.slice(4) : `${parent}/${name.slice(4)}`;
          if (aboveOrUnder(hidden)) remove(hidden, created);
          continue;
        }
        const rel = parts.join("/");
        if (!aboveOrUnder(rel)) {
          entry.resume();
          continue;
        }
        if (h.type === "directory") {
          entry.resume();
          drop(rel);
          continue;
        }
        // Anything else at rel replaces what was there, a folder's whole content included.
        remove(rel);
        if (!under(rel)) {
          entry.resume();
          continue;
        }
        if (Buffer.byteLength(rel) > MAX_STATIC_PATH_BYTES) {
          entry.resume();
          warn(`/${rel.slice(0, 64)}... is a path over ${MAX_STATIC_PATH_BYTES} bytes: not served`);
          continue;
        }
        switch (h.type) {
          case "file":
          case "contiguous-file": {
            const size = h.size ?? 0;
            if (size > opts.maxFileBytes) {
              entry.resume();
              warn(
                `/${rel} is ${mib(size)}, over the ${mib(opts.maxFileBytes)} a static file may have: not served`,
              );
              continue;
            }
            if (total + size > opts.maxTotalBytes || files.size >= opts.maxFiles) {
              entry.resume();
              warn(
                `/${rel}: the statics are over ${mib(opts.maxTotalBytes)} or ${opts.maxFiles} files in all: not served`,
              );
              continue;
            }
            const chunks: Buffer[] = [];
            for await (const chunk of entry) chunks.push(chunk as Buffer);
            const bytes = Buffer.concat(chunks);
            add(rel, bytes);
            created.add(rel);
            break;
          }
          case "link": {
            entry.resume();
            let target: string;
            try {
              target = entryPath(h.linkname ?? "").join("/");
            } catch {
              warn(`/${rel} is a hard link out of the image's root: not served`);
              continue;
            }
            const bytes = files.get(target);
            if (bytes === undefined || !under(target)) {
              warn(`/${rel} is a hard link to /${target}, which is not a static file: not served`);
              continue;
            }
            // A link is one more file of the manifest: it counts against the same limits.
            if (total + bytes.length > opts.maxTotalBytes || files.size >= opts.maxFiles) {
              warn(
                `/${rel}: the statics are over ${mib(opts.maxTotalBytes)} or ${opts.maxFiles} files in all: not served`,
              );
              continue;
            }
            add(rel, bytes);
            created.add(rel);
            break;
          }
          case "symlink":
            entry.resume();
            warn(`/${rel} is a symlink (to ${h.linkname}): symlinks are not followed, not served`);
            break;
          default:
            entry.resume();
            warn(`/${rel} is a ${h.type}, not a regular file: not served`);
        }
      }
    } catch (error) {
      extract.destroy();
      await feeding.catch(() => {});
      throw error;
    }
    await feeding;
  }
  if (dropped > 0) warnings.push(`and ${dropped} more files not served`);
  return { files, warnings };
}

function mib(bytes: number): string {
  return bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${bytes} bytes`;
}
