import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BUILD_CONTEXTS_BUCKET } from "@hangar/domain";
import { applyLayer, LayerTooLargeError, openObjectBucket } from "@hangar/oci";
import type { ObjectStore } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { BuildError } from "./domain/errors.js";

/** Reads build contexts from their Object Store bucket. */
export class BuildContextStore {
  private constructor(private readonly os: ObjectStore) {}

  /** Opens the bucket, creating it if the gateway has not yet. */
  static async open(
    nc: NatsConnection,
    opts: { bucket?: string; replicas?: number } = {},
  ): Promise<BuildContextStore> {
    return new BuildContextStore(await openObjectBucket(nc, opts.bucket ?? BUILD_CONTEXTS_BUCKET, opts));
  }

  /**
   * Downloads the context `name` to `tarFile`, checks it against the digest the request announced,
   * and unpacks it into `dir`. Entries that would land outside `dir` are refused, and so is a
   * context whose files add up to more than `maxUnpackedBytes`.
   */
  async fetch(
    name: string,
    expectedDigest: string | undefined,
    tarFile: string,
    dir: string,
    maxUnpackedBytes: number,
  ): Promise<void> {
    const object = await this.os.get(name);
    if (object === null) {
      throw new BuildError(
        "context_missing",
        `build context ${name} is not in the context store; start the build again`,
      );
    }
    const hash = createHash("sha256");
    const data = Readable.fromWeb(object.data as import("node:stream/web").ReadableStream<Uint8Array>);
    data.on("data", (chunk: Buffer) => hash.update(chunk));
    await pipeline(data, createWriteStream(tarFile));
    const err = await object.error;
    if (err) throw err;
    const digest = `sha256:${hash.digest("hex")}`;
    if (expectedDigest && digest !== expectedDigest) {
      throw new BuildError(
        "context_corrupt",
        `build context ${name} hashes to ${digest}, not the ${expectedDigest} it was uploaded with; start the build again`,
      );
    }
    try {
      await applyLayer(createReadStream(tarFile), dir, { mode: "flatten", maxBytes: maxUnpackedBytes });
    } catch (cause) {
      if (cause instanceof LayerTooLargeError) {
        throw new BuildError(
          "context_too_large",
          `the build context unpacks to more than ${Math.round(maxUnpackedBytes / 2 ** 20)} MiB: leave files out with .dockerignore, or raise HANGAR_BUILDER_MAX_CONTEXT_MB on the builder`,
          {},
          { cause },
        );
      }
      throw new BuildError(
        "context_invalid",
        `the build context is not a readable tar: ${(cause as Error).message}`,
        {},
        { cause },
      );
    }
  }

  /** Deletes the context `name` once its build has ended; one already gone is left as it is (no write). */
  async discard(name: string): Promise<void> {
    if (name === "") return;
    // info() still answers for a deleted object, marked deleted.
    const info = await this.os.info(name);
    if (info === null || info.deleted) return;
    await this.os.delete(name);
  }
}
