import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { type IdRange, withDirLock } from "@hangar/oci";
import { writeJsonAtomic } from "./state.js";

/*
 * The host uid/gid range each tenant's machines run as: a user namespace maps a machine's ids
 * 0..65535 to its organization's range, so root in one org's machine is an unprivileged stranger to
 * the host and to every other org's files and processes. Ranges are handed out in order and kept in
 * one file per host (every agent and test on the host shares it: two allocators on one host would
 * give two orgs one range), never reused while the file lives: a hash could give two orgs the same
 * range. They start at 2^30, far above the ids a Debian host gives its users (and /etc/subuid's
 * usual 100000..), and stay below 2^31 for tools that read ids as signed; builds use the range
 * just below (the builder's BUILD_ID_RANGE).
 */

/** Ids per range: a whole 16-bit id space, as images expect (nobody is 65534). */
export const RANGE_SIZE = 65536;
export const RANGE_BASE = 2 ** 30;
const MAX_RANGES = (2 ** 31 - RANGE_BASE) / RANGE_SIZE;

/** The host's file of ranges. */
export const ID_RANGES_FILE = "/var/lib/hangar/id-ranges.json";
/** A lock older than this was left by a process that died holding it. */
const STALE_LOCK_MS = 10_000;

interface RangesFile {
  /** Tenant (org slug) -> range index. */
  tenants: Record<string, number>;
}

/** The tenants' ranges of one host, in `file`, allocated under a lock every process on the host takes. */
export class IdRanges {
  readonly #known = new Map<string, IdRange>();

  constructor(private readonly file: string = ID_RANGES_FILE) {}

  /** The tenant's range, allocated (and recorded) on first use. */
  async rangeOf(tenant: string): Promise<IdRange> {
    const known = this.#known.get(tenant);
    if (known) return known;
    const index = await this.#locked(async () => {
      const data = await this.#read();
      let i = data.tenants[tenant];
      if (i === undefined) {
        const used = Object.values(data.tenants);
        i = used.length === 0 ? 0 : Math.max(...used) + 1;
        if (i >= MAX_RANGES) throw new Error(`no uid range left for tenant ${tenant} on this host`);
        data.tenants[tenant] = i;
        await writeJsonAtomic(this.file, data);
      }
      return i;
    });
    const range = { hostId: RANGE_BASE + index * RANGE_SIZE, size: RANGE_SIZE };
    this.#known.set(tenant, range);
    return range;
  }

  async #read(): Promise<RangesFile> {
    try {
      return JSON.parse(await readFile(this.file, "utf8")) as RangesFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { tenants: {} };
      throw err;
    }
  }

  /** Runs `fn` holding `<file>.lock` (a folder: mkdir is atomic), across processes. */
  async #locked<T>(fn: () => Promise<T>): Promise<T> {
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    return withDirLock(`${this.file}.lock`, fn, { staleMs: STALE_LOCK_MS, pollMs: 5 });
  }
}
