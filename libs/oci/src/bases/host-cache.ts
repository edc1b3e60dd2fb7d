import { mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { homedir, hostname } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { hashFile } from "../blob-store.js";
import type { LayerFile } from "../layer.js";

/** The host's cache of made bases: `$HANGAR_CACHE_DIR`, else `$XDG_CACHE_HOME/hangar`, else ~/.cache/hangar. */
export function defaultCacheDir(): string {
  return (
    process.env.HANGAR_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "hangar")
  );
}

/** A layer kept in the host cache with what its maker wants to remember about it (e.g. /etc/passwd). */
export interface CachedLayer<Extra> extends LayerFile {
  extra: Extra;
}

const inProcess = new Map<string, Promise<unknown>>();

/**
 * The cached layers `keys` under `dir`, made together by `make` (in a work folder under `dir`, one
 * result per key) if any is absent or its file's sha256 is not the one recorded when it was made (a
 * damaged cache is made again, loudly). A lock file makes concurrent makers on this host (test files,
 * services) make them once.
 */
export function cachedLayers<Extra>(
  dir: string,
  keys: string[],
  make: (work: string) => Promise<Array<{ layer: LayerFile; extra: Extra }>>,
  onProgress: (line: string) => void,
): Promise<CachedLayer<Extra>[]> {
  const ids = keys.map((key) => join(dir, key));
  const group = ids.join("+");
  let pending = inProcess.get(group) as Promise<CachedLayer<Extra>[]> | undefined;
  if (pending === undefined) {
    pending = (async () => {
      await mkdir(dir, { recursive: true });
      const found = await allVerified<Extra>(ids, onProgress);
      if (found) return found;
      return withLock(`${ids[0]}.lock`, onProgress, async () => {
        const again = await allVerified<Extra>(ids, onProgress);
        if (again) return again;
        const work = `${ids[0]}.work`;
        await rm(work, { recursive: true, force: true });
        await mkdir(work, { recursive: true });
        try {
          const made = await make(work);
          return await Promise.all(
            ids.map(async (id, i) => {
              const result = made[i];
              if (result === undefined)
                throw new Error(`the maker of ${keys.join(", ")} made ${made.length} layers`);
              const { layer, extra } = result;
              // Same folder, so the renames are atomic: no one reads a half-written layer under the final name.
              await rename(layer.file, `${id}.tar.gz`);
              const meta = { digest: layer.digest, diffId: layer.diffId, size: layer.size, extra };
              await writeFile(`${id}.json.tmp`, JSON.stringify(meta));
              await rename(`${id}.json.tmp`, `${id}.json`);
              return { ...meta, file: `${id}.tar.gz` };
            }),
          );
        } finally {
          await rm(work, { recursive: true, force: true });
        }
      });
    })().finally(() => inProcess.delete(group));
    inProcess.set(group, pending);
  }
  return pending;
}

async function allVerified<Extra>(
  ids: string[],
  onProgress: (line: string) => void,
): Promise<CachedLayer<Extra>[] | undefined> {
  const found: CachedLayer<Extra>[] = [];
  for (const id of ids) {
    const layer = await verified<Extra>(id, onProgress);
    if (layer === undefined) return undefined;
    found.push(layer);
  }
  return found;
}

async function verified<Extra>(
  id: string,
  onProgress: (line: string) => void,
): Promise<CachedLayer<Extra> | undefined> {
  const meta = await readFile(`${id}.json`, "utf8").then(
    (text) => JSON.parse(text) as Omit<CachedLayer<Extra>, "file">,
    () => undefined,
  );
  if (meta === undefined) return undefined;
  const actual = await hashFile(`${id}.tar.gz`).catch(() => undefined);
  if (actual?.digest === meta.digest) return { ...meta, file: `${id}.tar.gz` };
  const line =
    `WARNING: the cached base layer ${id}.tar.gz ` +
    (actual ? `has sha256 ${actual.digest}, not the ${meta.digest} it was made with` : "is missing") +
    "; making it again";
  onProgress(line);
  process.emitWarning(line);
  await rm(`${id}.json`, { force: true });
  return undefined;
}

/** A lock held longer than this by a process that is gone (or on another host) is taken over. */
const STALE_MS = 30 * 60_000;

/** Runs `fn` holding the lock file `path` (O_EXCL; taken over when its holder process is gone). */
async function withLock<T>(
  path: string,
  onProgress: (line: string) => void,
  fn: () => Promise<T>,
): Promise<T> {
  const owner = `${hostname()} ${process.pid}`;
  let waited = false;
  for (;;) {
    try {
      const handle = await open(path, "wx");
      await handle.writeFile(owner);
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    if (await isStale(path)) {
      await rm(path, { force: true });
      continue;
    }
    if (!waited) onProgress(`waiting for another maker of ${path.replace(/\.lock$/, "")} on this host`);
    waited = true;
    await sleep(500);
  }
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}

async function isStale(path: string): Promise<boolean> {
  const [text, st] = await Promise.all([
    readFile(path, "utf8").catch(() => ""),
    stat(path).catch(() => undefined),
  ]);
  if (st === undefined) return false; // released meanwhile: just try again
  const [host, pid] = text.split(" ");
  if (host === hostname() && pid !== undefined && pid !== "") {
    try {
      process.kill(Number(pid), 0);
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "ESRCH";
    }
  }
  // Written but not yet filled in (a holder between open and write), or held elsewhere: by age only.
  return Date.now() - st.mtimeMs > (text === "" ? 10_000 : STALE_MS);
}
