import { EDGE_BUNDLES_BUCKET, edgeBundleName } from "@hangar/config";
import { openObjectBucket } from "@hangar/oci";
import type { ObjectStore } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import type { EdgeBundleStore } from "../http/edge-bundles.js";
import { ApiError } from "../http/errors.js";

/**
 * Edge apps' bundles in the hangar-edge-bundles Object Store bucket, one object per app and digest
 * (`<app>/sha256:<hex>`, edgeBundleName): the gateway writes them, the proxies read them. An object
 * is never changed once written: its name is its content's hash.
 */
export class EdgeBundles implements EdgeBundleStore {
  private constructor(readonly os: ObjectStore) {}

  /** Opens (creating if needed, at most `maxBytes` when given: HANGAR_EDGE_BUNDLES_MAX_BYTES) the bucket. */
  static async open(
    nc: NatsConnection,
    opts: { bucket?: string; replicas?: number; maxBytes?: number } = {},
  ): Promise<EdgeBundles> {
    return new EdgeBundles(await openObjectBucket(nc, opts.bucket ?? EDGE_BUNDLES_BUCKET, opts));
  }

  async put(app: string, digest: string, code: Uint8Array): Promise<boolean> {
    if (await this.has(app, digest)) return false;
    try {
      await this.os.putBlob({ name: edgeBundleName(app, digest) }, code);
    } catch (err) {
      // The bucket's max bytes (the stream discards new messages): no bundle is half stored.
      if (/maximum bytes exceeded/i.test((err as Error).message))
        throw ApiError.of(
          "resource_exhausted",
          "the edge bundles bucket is full (HANGAR_EDGE_BUNDLES_MAX_BYTES, every app's bundles together): the platform's operator must raise it",
          { cause: err },
        );
      throw err;
    }
    return true;
  }

  async has(app: string, digest: string): Promise<boolean> {
    const info = await this.os.info(edgeBundleName(app, digest));
    return info !== null && !info.deleted;
  }
}
