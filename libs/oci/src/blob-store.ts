import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { finished } from "node:stream/promises";
import type { ObjectStore } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { checkDigest, type Digest, DigestHasher, digestOf } from "./digest.js";
import { BlobNotFoundError, DigestMismatchError } from "./errors.js";
import { openObjectBucket } from "./object-bucket.js";

/** The default Object Store bucket of image blobs (layers, configs, manifests). */
export const DEFAULT_BLOB_BUCKET = "hangar-blobs";

// Bigger than the object store's 128 KiB default: layers run to tens of MB, and fewer chunks means
// fewer acknowledgements. nats-server's default max_payload (1 MiB) caps it anyway.
const CHUNK_SIZE = 512 * 1024;

/**
 * Content-addressed blobs in a JetStream Object Store bucket, one object per blob named by its
 * digest. Every put hashes the content as it streams, so nothing is ever stored under a digest it
 * does not have.
 */
export class BlobStore {
  private constructor(private readonly os: ObjectStore) {}

  /** Opens (creating if needed) the blob bucket. */
  static async open(
    nc: NatsConnection,
    opts: { bucket?: string; replicas?: number } = {},
  ): Promise<BlobStore> {
    return new BlobStore(await openObjectBucket(nc, opts.bucket ?? DEFAULT_BLOB_BUCKET, opts));
  }

  /** True if the blob is stored. */
  async has(d: Digest): Promise<boolean> {
    return (await this.size(d)) !== undefined;
  }

  /** The blob's size in bytes, or undefined if it is not stored. */
  async size(d: Digest): Promise<number | undefined> {
    const info = await this.os.info(d);
    return info === null || info.deleted ? undefined : info.size;
  }

  /** Stores bytes; with `expected`, refuses (DigestMismatchError) bytes of another digest. */
  async putBytes(bytes: Uint8Array, expected?: Digest): Promise<{ digest: Digest; size: number }> {
    const digest = digestOf(bytes);
    checkDigest(digest, expected);
    if (!(await this.has(digest))) await this.upload(digest, once(bytes), true);
    return { digest, size: bytes.byteLength };
  }

  /** Stores a file's content; with `expected`, refuses (DigestMismatchError) a file of another digest. */
  async putFile(path: string, expected?: Digest): Promise<{ digest: Digest; size: number }> {
    // Without an expected digest the object's name is not known before the content is read: hash first.
    const digest = expected ?? (await hashFile(path)).digest;
    return this.putStream(createReadStream(path), digest);
  }

  /**
   * Stores a stream. With `expected` it streams straight into the bucket and a mismatch stores
   * nothing; without, it is spooled to a temp file to learn its digest first. `checked` says that
   * `src` hashes itself and fails before its end when it is not `expected` (a pull's fetch): then
   * it is not hashed a second time here (the object store still hashes it for its own record).
   */
  async putStream(
    src: AsyncIterable<Uint8Array>,
    expected?: Digest,
    opts: { checked?: boolean } = {},
  ): Promise<{ digest: Digest; size: number }> {
    if (expected === undefined) {
      const dir = await mkdtemp(join(tmpdir(), "hangar-blob-"));
      try {
        const file = join(dir, "blob");
        const { digest } = await spool(src, file);
        return await this.putStream(createReadStream(file), digest);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    if (await this.has(expected)) {
      // Already stored: still read the content so a wrong one is reported, as a fresh put would.
      const hasher = new DigestHasher();
      for await (const chunk of src) hasher.update(chunk);
      checkDigest(hasher.digest(), expected);
      return { digest: expected, size: hasher.size };
    }
    const size = await this.upload(expected, src, opts.checked === true);
    return { digest: expected, size };
  }

  /** Streams a stored blob; the object store checks its digest at the end. Throws BlobNotFoundError. */
  async getStream(d: Digest): Promise<AsyncIterable<Uint8Array>> {
    const result = await this.os.get(d);
    if (result === null) throw new BlobNotFoundError(d);
    const stored = storedDigest(result.info.digest);
    if (stored !== d) throw new DigestMismatchError(d, stored ?? result.info.digest);
    const data = result.data;
    return (async function* () {
      const reader = data.getReader();
      let finished = false;
      try {
        while (true) {
          const { done, value } = await reader.read();
          if (done) break;
          yield value;
        }
        finished = true;
      } finally {
        // A reader that stops early (a client hanging up) must stop the object store's consumer too.
        if (!finished) await reader.cancel().catch(() => {});
        reader.releaseLock();
      }
      const error = await result.error;
      if (error) throw error;
    })();
  }

  /** A stored blob's bytes. Throws BlobNotFoundError. */
  async getBytes(d: Digest): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of await this.getStream(d)) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  /** Writes a stored blob to `path` atomically (temp file + rename), checking its digest. */
  async toFile(d: Digest, path: string): Promise<void> {
    const tmp = join(dirname(path), `.${Math.random().toString(36).slice(2)}.partial`);
    try {
      const { digest } = await spool(await this.getStream(d), tmp);
      checkDigest(digest, d);
      await rename(tmp, path);
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
  }

  private async upload(name: Digest, src: AsyncIterable<Uint8Array>, checked: boolean): Promise<number> {
    const hasher = new DigestHasher();
    let size = 0;
    const it = src[Symbol.asyncIterator]();
    // Erroring the stream before its end makes the object store purge the chunks it wrote and
    // publish no metadata, so a mismatched put leaves nothing behind.
    const rs = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await it.next();
          if (done) {
            const actual = checked ? name : hasher.digest();
            if (actual === name) controller.close();
            else controller.error(new DigestMismatchError(name, actual));
            return;
          }
          const chunk = value instanceof Uint8Array ? value : Buffer.from(value);
          if (!checked) hasher.update(chunk);
          size += chunk.length;
          controller.enqueue(chunk);
        } catch (error) {
          controller.error(error);
        }
      },
      async cancel() {
        await it.return?.();
      },
    });
    await this.os.put({ name, options: { max_chunk_size: CHUNK_SIZE } }, rs);
    return size;
  }
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

/** Writes a stream to a file, hashing it on the way. */
async function spool(
  src: AsyncIterable<Uint8Array>,
  file: string,
): Promise<{ digest: Digest; size: number }> {
  const hasher = new DigestHasher();
  const out = createWriteStream(file);
  try {
    for await (const chunk of src) {
      hasher.update(chunk);
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", resolve));
    }
  } finally {
    out.end();
    await finished(out);
  }
  return { digest: hasher.digest(), size: hasher.size };
}

/** The digest and size of a file. */
export async function hashFile(path: string): Promise<{ digest: Digest; size: number }> {
  const hasher = new DigestHasher();
  for await (const chunk of createReadStream(path)) hasher.update(chunk as Buffer);
  return { digest: hasher.digest(), size: hasher.size };
}

// The object store records "SHA-256=<base64url>"; the same hash in OCI's notation.
function storedDigest(objDigest: string): Digest | undefined {
  const prefix = "SHA-256=";
  if (!objDigest.startsWith(prefix)) return undefined;
  return `sha256:${Buffer.from(objDigest.slice(prefix.length), "base64url").toString("hex")}`;
}
