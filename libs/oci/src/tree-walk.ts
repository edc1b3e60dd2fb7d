import type { Dirent, Stats } from "node:fs";
import { lstat, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

/** One entry of a tree walk: its path under the walk's root and what readdir said it is. */
export interface TreeEntry {
  /** Relative to the root, `/`-separated, no leading slash (`app/node_modules`). */
  rel: string;
  /** The entry's parent, as `rel` ("" for the root's own entries). */
  parent: string;
  name: string;
  abs: string;
  /** From readdir (the entry itself, a symlink not followed). */
  isDirectory: boolean;
}

/**
 * Every entry under `root` in a stable order: each folder's entries sorted by name, a folder before
 * what is in it. `skip` leaves an entry out, and for a folder what is under it too. Reads one
 * readdir at a time and no lstat: callers stat what they need (in parallel, with `readAhead`).
 */
export async function* walkTree(root: string, skip?: (e: TreeEntry) => boolean): AsyncGenerator<TreeEntry> {
  async function* walk(parent: string): AsyncGenerator<TreeEntry> {
    const dirents: Dirent[] = await readdir(parent === "" ? root : join(root, parent), {
      withFileTypes: true,
    });
    dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of dirents) {
      const rel = parent === "" ? d.name : `${parent}/${d.name}`;
      const entry: TreeEntry = {
        rel,
        parent,
        name: d.name,
        abs: join(root, rel),
        isDirectory: d.isDirectory(),
      };
      if (skip?.(entry)) continue;
      yield entry;
      if (entry.isDirectory) yield* walk(rel);
    }
  }
  yield* walk("");
}

/**
 * Runs `load` on each item as it comes, with up to `ahead` loads in flight, and yields their results
 * in the items' order. A tree of small files is read in a fraction of the time a one-at-a-time walk
 * takes: each file's lstat, open and read is a round trip to libuv's thread pool, and one at a time
 * those round trips are most of the time. `load` is called in order and synchronously as each item
 * is taken, so it can note what later loads wait for. A failed load fails the iteration when its
 * turn comes; an iteration that ends early waits for the loads still under way, so none outlives it.
 */
export async function* readAhead<T, R>(
  items: AsyncIterable<T>,
  ahead: number,
  load: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const source = items[Symbol.asyncIterator]();
  const queue: Promise<R>[] = [];
  let exhausted = false;
  try {
    for (;;) {
      while (!exhausted && queue.length < ahead) {
        const next = await source.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        const loading = load(next.value);
        loading.catch(() => {}); // seen when its turn comes; this only keeps it from being "unhandled"
        queue.push(loading);
      }
      const first = queue.shift();
      if (first === undefined) return;
      yield await first;
    }
  } finally {
    await Promise.allSettled(queue);
    await source.return?.(undefined);
  }
}

/** Files up to this size are read whole by `readAhead` loads; larger ones are streamed in turn. */
export const READ_AHEAD_FILE_BYTES = 1 << 20;
/** Loads in flight: enough to keep libuv's four threads busy, few enough to bound memory (32 MiB). */
export const READ_AHEAD = 32;

/** A walked entry with its lstat and, for a regular file of up to READ_AHEAD_FILE_BYTES, its bytes. */
export interface LoadedEntry extends TreeEntry {
  st: Stats;
  content?: Buffer;
}

/** `walkTree` with each entry's lstat, and small files' contents, read ahead in parallel. */
export function walkTreeLoaded(
  root: string,
  opts: { skip?: (e: TreeEntry) => boolean; readFiles?: boolean } = {},
): AsyncGenerator<LoadedEntry> {
  return readAhead(walkTree(root, opts.skip), READ_AHEAD, async (e) => {
    const st = await lstat(e.abs);
    if (opts.readFiles && st.isFile() && st.size <= READ_AHEAD_FILE_BYTES && st.size > 0) {
      const content = await readFile(e.abs);
      // A file that grew or shrank since its lstat is read again in turn, as one streamed.
      if (content.length === st.size) return { ...e, st, content };
    }
    return { ...e, st };
  });
}
