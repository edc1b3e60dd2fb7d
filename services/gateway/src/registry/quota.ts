import { type KvBucketOptions, openKvBucket } from "@hangar/service";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { isLostCas, orgKeyToken } from "../limits/kv-cas.js";
import { RegistryError } from "./errors.js";

/** The KV bucket holding each org's stored blob bytes, shared by the gateway replicas. */
export const BLOB_USAGE_BUCKET = "hangar-blob-usage";

// Two replicas finishing uploads of one org at the same moment retry each other's lost
// compare-and-set; a handful of rounds settles it.
const MAX_CAS_ATTEMPTS = 16;

/** The bytes of blobs each org has pushed through `/v2`. */
export interface BlobUsage {
  usedBy(org: string): Promise<number>;
  add(org: string, bytes: number): Promise<void>;
}

/** An org's share of the registry: what it stored, and how much it may. */
export interface BlobQuota {
  usage: BlobUsage;
  bytesPerOrg: number;
}

/**
 * Refuses a new blob of `bytes` for `org` with DENIED (403) when its stored bytes would pass the
 * quota. Blobs already stored (by anyone) cost nothing: the store keeps one copy per digest.
 */
export async function admitBlob(quota: BlobQuota, org: string, bytes: number): Promise<void> {
  const used = await quota.usage.usedBy(org);
  if (used + bytes > quota.bytesPerOrg) {
    throw new RegistryError(
      "DENIED",
      `org ${org}'s registry quota of ${quota.bytesPerOrg} bytes is used up (${used} stored, this blob ${bytes}); raise HANGAR_GATEWAY_ORG_BLOB_QUOTA_GB on the gateway`,
      { quota: quota.bytesPerOrg, used },
    );
  }
}

/** Stored blob bytes per org in NATS KV, added to with compare-and-set on the key's revision. */
export class KvBlobUsage implements BlobUsage {
  private constructor(private readonly kv: KV) {}

  /** Opens (creating if needed) the bucket. */
  static async open(nc: NatsConnection, opts: KvBucketOptions = {}): Promise<KvBlobUsage> {
    return new KvBlobUsage(
      await openKvBucket(nc, opts.bucket ?? BLOB_USAGE_BUCKET, { replicas: opts.replicas }),
    );
  }

  async usedBy(org: string): Promise<number> {
    return (await this.read(org)).bytes;
  }

  async add(org: string, bytes: number): Promise<void> {
    const key = orgKeyToken(org);
    for (let attempt = 1; ; attempt++) {
      const { bytes: used, revision } = await this.read(org);
      const next = String(used + bytes);
      try {
        if (revision === undefined) await this.kv.create(key, next);
        else await this.kv.update(key, next, revision);
        return;
      } catch (err) {
        if (!isLostCas(err) || attempt === MAX_CAS_ATTEMPTS) throw err;
      }
    }
  }

  private async read(org: string): Promise<{ bytes: number; revision: number | undefined }> {
    const entry = await this.kv.get(orgKeyToken(org));
    if (entry === null || entry.operation !== "PUT") return { bytes: 0, revision: undefined };
    const bytes = Number(entry.string());
    return { bytes: Number.isFinite(bytes) ? bytes : 0, revision: entry.revision };
  }
}
