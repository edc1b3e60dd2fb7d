import { lstat, mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { BlobStore } from "./blob-store.js";
import { type Digest, digestHex } from "./digest.js";
import { applyLayer } from "./layer.js";

/** Length of the digest prefix naming a layer's directory: short, so many lowerdirs fit in one mount. */
const SHORT = 16;

/**
 * Unpacked layers on local disk, each once, as overlayfs lower dirs under `root/<first 16 hex digits>`.
 * An unpack goes to a temp dir and is renamed into place, so a dir that exists is complete.
 */
export class LayerStore {
  readonly #inFlight = new Map<Digest, Promise<string>>();

  constructor(
    readonly root: string,
    private readonly blobs: BlobStore,
  ) {}

  /** The directory holding the unpacked layer, unpacking it from the blob store first if needed. */
  dir(layer: Digest): Promise<string> {
    let pending = this.#inFlight.get(layer);
    if (pending === undefined) {
      pending = this.unpack(layer).finally(() => this.#inFlight.delete(layer));
      this.#inFlight.set(layer, pending);
    }
    return pending;
  }

  private async unpack(layer: Digest): Promise<string> {
    const dir = join(this.root, digestHex(layer).slice(0, SHORT));
    if (await exists(dir)) return dir;
    await mkdir(this.root, { recursive: true });
    const tmp = join(this.root, `.tmp-${digestHex(layer).slice(0, SHORT)}-${process.pid}-${Date.now()}`);
    try {
      await applyLayer(await this.blobs.getStream(layer), tmp, { mode: "overlay" });
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

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
