import { createReadStream, createWriteStream, type Stats } from "node:fs";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join, normalize } from "node:path";
import { pipeline } from "node:stream/promises";
import dockerignore from "@balena/dockerignore";
import { pack as tarPack } from "tar-stream";
import { CliError } from "./cli-error.js";

/** One file, folder or symlink of the build context, by its path inside the context (with `/`). */
interface ContextEntry {
  path: string;
  stats: Stats;
  linkname?: string;
}

/** What was packed. */
export interface PackedContext {
  /** The tar file written. */
  file: string;
  /** Its size in bytes. */
  size: number;
  files: number;
  dirs: number;
  symlinks: number;
  /** Paths left out because they are neither files, folders nor symlinks (sockets, fifos, devices). */
  skipped: string[];
}

export interface PackOptions {
  /** The ignore file, relative to the context; .dockerignore by default. */
  ignoreFile?: string;
  /** The Dockerfile, relative to the context: always sent, as Docker does, even if ignored. */
  dockerfile?: string;
}

/** A path inside the context, with `/`, or a CliError when it points outside. */
export function contextPath(path: string, what: string): string {
  const clean = normalize(path).replaceAll("\\", "/").replace(/^\.\//, "");
  if (clean === ".." || clean.startsWith("../") || clean.startsWith("/")) {
    throw new CliError(
      `the ${what} ${path} is outside the build context`,
      `move it into the folder deployed`,
    );
  }
  return clean;
}

async function readIgnoreFile(dir: string, file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(join(dir, file), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}

/** Lists the context: every path .dockerignore keeps, parents before children, sorted for a stable tar. */
export async function listContext(
  dir: string,
  options: PackOptions = {},
): Promise<{
  entries: ContextEntry[];
  skipped: string[];
}> {
  const ignoreFile = contextPath(options.ignoreFile ?? ".dockerignore", "ignore file");
  const patterns = await readIgnoreFile(dir, ignoreFile);
  // The package is CommonJS with `factory.default = factory`, which is what its typings describe.
  const ig = dockerignore.default().add(patterns);
  const alwaysSent = new Set([ignoreFile, contextPath(options.dockerfile ?? "Dockerfile", "Dockerfile")]);
  // Without a `!pattern`, nothing inside an ignored folder can come back, so it is not even read.
  const canReinclude = patterns.some((p) => p.startsWith("!"));
  const entries: ContextEntry[] = [];
  const skipped: string[] = [];

  async function walk(relDir: string): Promise<boolean> {
    const names = (await readdir(join(dir, relDir))).sort();
    let kept = false;
    for (const name of names) {
      const path = relDir === "" ? name : `${relDir}/${name}`;
      const stats = await lstat(join(dir, path));
      const ignored = ig.ignores(path) && !alwaysSent.has(path);
      if (stats.isDirectory()) {
        const holdsSent = [...alwaysSent].some((sent) => sent.startsWith(`${path}/`));
        if (ignored && !canReinclude && !holdsSent) continue;
        const at = entries.length;
        entries.push({ path, stats });
        const childKept = await walk(path);
        // An ignored folder is sent only to hold what a `!pattern` brought back inside it.
        if (ignored && !childKept) entries.splice(at, 1);
        kept ||= !ignored || childKept;
      } else if (!ignored) {
        if (stats.isFile()) entries.push({ path, stats });
        else if (stats.isSymbolicLink())
          entries.push({ path, stats, linkname: await readlink(join(dir, path)) });
        else skipped.push(path);
        kept ||= stats.isFile() || stats.isSymbolicLink();
      }
    }
    return kept;
  }

  await walk("");
  return { entries, skipped };
}

/** Packs the build context in `dir` into a tar at `out`, honouring .dockerignore; symlinks stay links. */
export async function packContext(
  dir: string,
  out: string,
  options: PackOptions = {},
): Promise<PackedContext> {
  const { entries, skipped } = await listContext(dir, options);
  const pack = tarPack();
  let size = 0;
  const written = pipeline(
    pack,
    async function* (source: AsyncIterable<unknown>) {
      for await (const chunk of source) {
        size += (chunk as Buffer).length;
        yield chunk;
      }
    },
    createWriteStream(out),
  );
  const counts = { files: 0, dirs: 0, symlinks: 0 };
  try {
    for (const entry of entries) {
      const header = {
        name: entry.path,
        mode: entry.stats.mode & 0o7777,
        mtime: entry.stats.mtime,
        uid: 0,
        gid: 0,
      };
      if (entry.linkname !== undefined) {
        counts.symlinks++;
        await addEntry(pack, { ...header, type: "symlink", linkname: entry.linkname });
      } else if (entry.stats.isDirectory()) {
        counts.dirs++;
        await addEntry(pack, { ...header, type: "directory" });
      } else {
        counts.files++;
        const sink = pack.entry({ ...header, type: "file", size: entry.stats.size });
        await pipeline(createReadStream(join(dir, entry.path)), sink);
      }
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => undefined);
    throw err;
  }
  await written;
  return { file: out, size, ...counts, skipped };
}

function addEntry(
  pack: ReturnType<typeof tarPack>,
  header: Parameters<ReturnType<typeof tarPack>["entry"]>[0],
) {
  return new Promise<void>((resolve, reject) => {
    pack.entry(header, (err) => (err ? reject(err) : resolve()));
  });
}

/** "1.2 MB", "340 kB", "12 B". */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}
