import { createHash } from "node:crypto";
import { BUILD_CONTEXTS_BUCKET } from "@hangar/domain";
import { openObjectBucket } from "@hangar/oci";
import type { ObjectStore } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";

// Fewer, larger chunks than the object store's 128 KiB default mean fewer acknowledgements per
// upload; nats-server's default max_payload (1 MiB) caps it anyway.
const CHUNK_SIZE = 512 * 1024;

/** The context is over the gateway's size limit; nothing of it was kept. */
export class ContextTooLargeError extends Error {
  override readonly name = "ContextTooLargeError";
  readonly code = "context_too_large";

  constructor(readonly limitBytes: number) {
    super(
      `build context is larger than ${Math.round(limitBytes / 2 ** 20)} MB: leave files out with .dockerignore, or raise HANGAR_GATEWAY_MAX_CONTEXT_MB on the gateway`,
    );
  }
}

/** The request carried no context. */
export class EmptyContextError extends Error {
  override readonly name = "EmptyContextError";
  readonly code = "empty_context";

  constructor() {
    super("the build context is empty: send the context as a tar in the request body");
  }
}

/** A stored context. */
export interface StoredContext {
  /** `sha256:<hex>` of the bytes as received. */
  digest: string;
  size: number;
}

/** Build contexts in a JetStream Object Store bucket, streamed in and hashed on the way. */
export class BuildContexts {
  private constructor(readonly os: ObjectStore) {}

  /** Opens (creating if needed) the bucket. */
  static async open(
    nc: NatsConnection,
    opts: { bucket?: string; replicas?: number } = {},
  ): Promise<BuildContexts> {
    return new BuildContexts(await openObjectBucket(nc, opts.bucket ?? BUILD_CONTEXTS_BUCKET, opts));
  }

  /**
   * Streams `body` into the object `name`, never holding more than a chunk of it. Over `maxBytes`
   * it throws ContextTooLargeError and the object store purges what it had written; an empty body
   * throws EmptyContextError before anything is written.
   */
  async put(name: string, body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<StoredContext> {
    if (!body) throw new EmptyContextError();
    const reader = body.getReader();
    let first: Uint8Array | undefined;
    while (!first) {
      const { done, value } = await reader.read();
      if (done) throw new EmptyContextError();
      if (value.byteLength > 0) first = value;
    }
    const hash = createHash("sha256");
    let size = 0;
    const source = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          let chunk = first;
          first = undefined;
          if (!chunk) {
            const next = await reader.read();
            if (next.done) {
              controller.close();
              return;
            }
            chunk = next.value;
          }
          size += chunk.byteLength;
          if (size > maxBytes) {
            // Erroring the source makes the object store purge the chunks it wrote and publish no metadata.
            controller.error(new ContextTooLargeError(maxBytes));
            void reader.cancel().catch(() => {});
            return;
          }
          hash.update(chunk);
          controller.enqueue(chunk);
        } catch (err) {
          controller.error(err);
        }
      },
      cancel: (reason) => reader.cancel(reason),
    });
    await this.os.put({ name, options: { max_chunk_size: CHUNK_SIZE } }, source);
    return { digest: `sha256:${hash.digest("hex")}`, size };
  }

  /** Removes a stored context (e.g. when its build could not be requested). */
  async delete(name: string): Promise<void> {
    await this.os.delete(name);
  }
}
