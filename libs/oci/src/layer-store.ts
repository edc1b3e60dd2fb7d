import { chmod, lstat, mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import type { BlobStore } from "./blob-store.js";
import { type Digest, digestHex } from "./digest.js";
import { applyLayer } from "./layer.js";

/**
 * A layer's bytes as they are being fetched (image-source's onLayerStream): `stream` must be read to
 * its end, and what is made of it is used only once `verified` resolves (the whole layer arrived,
 * with the announced digest and size).
 */
export interface LayerSource {
  stream: Readable;
  verified: Promise<void>;
}

/** Length of the digest prefix naming a layer's directory: short, so many lowerdirs fit in one mount. */
const SHORT = 16;

/**
 * Unpacked layers on local disk, each once, as overlayfs lower dirs under `root/<first 16 hex digits>`.
 * An unpack goes to a temp dir and is renamed into place, so a dir that exists is complete. `root`
 * is 0700: layers keep what images hold, setuid-root programs and device nodes among them, which a
 * host user who could reach them would run or open as they are. Machines and builds see layers only
 * through overlays (nosuid, nodev), whose lowers the kernel reads with the mounter's credentials.
 */
export class LayerStore {
  readonly #inFlight = new Map<Digest, Promise<string>>();
  #rootReady: Promise<void> | null = null;

  constructor(
    readonly root: string,
    private readonly blobs: BlobStore,
  ) {}

  /**
   * The directory holding the unpacked layer, unpacking it first if needed: from the blob store, or
   * from `source`, the layer's bytes as a pull fetches them. A source this store does not need (the
   * layer is there, or being unpacked already) is read to its end all the same, so that the pull
   * storing the same bytes is not held up.
   */
  dir(layer: Digest, source?: LayerSource): Promise<string> {
    let pending = this.#inFlight.get(layer);
    if (pending === undefined) {
      pending = this.unpack(layer, source).finally(() => this.#inFlight.delete(layer));
      this.#inFlight.set(layer, pending);
      return pending;
    }
    return source ? Promise.all([pending, drain(source)]).then(([dir]) => dir) : pending;
  }

  /** Creates the root, or closes one an earlier version left open, 0700. */
  #ensureRoot(): Promise<void> {
    this.#rootReady ??= (async () => {
      await mkdir(this.root, { recursive: true, mode: 0o700 });
      await chmod(this.root, 0o700);
    })();
    return this.#rootReady;
  }

  private async unpack(layer: Digest, source?: LayerSource): Promise<string> {
    await this.#ensureRoot();
    const dir = join(this.root, digestHex(layer).slice(0, SHORT));
    if (await exists(dir)) {
      if (source) await drain(source);
      return dir;
    }
    const tmp = join(this.root, `.tmp-${digestHex(layer).slice(0, SHORT)}-${process.pid}-${Date.now()}`);
    try {
      await applyLayer(source ? source.stream : await this.blobs.getStream(layer), tmp, { mode: "overlay" });
      // The unpack read the whole stream: now it is known whether those were the layer's bytes.
      if (source) await source.verified;
      await rename(tmp, dir);
    } catch (error) {
      await rm(tmp, { recursive: true, force: true });
      // Another process may have unpacked the same layer first; its copy is as good as ours.
      if (
        (error as NodeJS.ErrnoException).code === "ENOTEMPTY" ||
        (error as NodeJS.ErrnoException).code === "EEXIST"
      ) {
        return dir;
      }
      throw error;
    }
    return dir;
  }
}

/** Reads a source to its end, keeping nothing; rejects as it does (or as its check does). */
async function drain(source: LayerSource): Promise<void> {
  source.stream.resume();
  await finished(source.stream);
  await source.verified;
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
