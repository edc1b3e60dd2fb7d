import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { IdRange } from "@hangar/oci";
import { writeJsonAtomic } from "./state.js";

/*
 * The host uid/gid range each tenant's machines run as: a user namespace maps a machine's ids
 * 0..65535 to its organization's range, so root in one org's machine is an unprivileged stranger to
 * the host and to every other org's files and processes. Ranges are handed out in order and kept in
 * the state folder, never reused while the file lives: a hash could give two orgs the same range.
 * They start at 2^30, far above the ids a Debian host gives its users (and /etc/subuid's usual
 * 100000..), and stay below 2^31 for tools that read ids as signed.
 */

/** Ids per range: a whole 16-bit id space, as images expect (nobody is 65534). */
export const RANGE_SIZE = 65536;
export const RANGE_BASE = 2 ** 30;
const MAX_RANGES = (2 ** 31 - RANGE_BASE) / RANGE_SIZE;

/** Builds and dir: machines of no org share none of an org's ranges: each is a tenant of its own. */
export const BUILD_TENANT = "hangar:builds";

interface RangesFile {
  /** Tenant (org slug) -> range index. */
  tenants: Record<string, number>;
}

/** The tenants' ranges of one host, persisted in `<stateDir>/id-ranges.json`. */
export class IdRanges {
  readonly #file: string;
  #loaded: Promise<RangesFile> | null = null;
  /** Serializes allocations, so two starts of a new tenant get one range. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(stateDir: string) {
    this.#file = join(stateDir, "id-ranges.json");
  }

  /** The tenant's range, allocated (and recorded) on first use. */
  rangeOf(tenant: string): Promise<IdRange> {
    const next = this.#queue.then(async () => {
      const data = await this.#load();
      let index = data.tenants[tenant];
      if (index === undefined) {
        const used = Object.values(data.tenants);
        index = used.length === 0 ? 0 : Math.max(...used) + 1;
        if (index >= MAX_RANGES) throw new Error(`no uid range left for tenant ${tenant} on this host`);
        data.tenants[tenant] = index;
        await writeJsonAtomic(this.#file, data);
      }
      return { hostId: RANGE_BASE + index * RANGE_SIZE, size: RANGE_SIZE };
    });
    this.#queue = next.catch(() => {});
    return next;
  }

  #load(): Promise<RangesFile> {
    this.#loaded ??= readFile(this.#file, "utf8").then(
      (text) => JSON.parse(text) as RangesFile,
      (err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return { tenants: {} };
        throw err;
      },
    );
    return this.#loaded;
  }
}
