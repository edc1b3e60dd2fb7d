import { createReadStream } from "node:fs";
import { chmod, lstat, mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { BlobStore } from "./blob-store.js";
import { type Digest, digestHex } from "./digest.js";
import { applyLayer } from "./layer.js";

/** Read size of a local layer file: large reads keep gunzip and the tar parser off many small chunks. */
const READ_CHUNK = 1 << 20;

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
   * from `file`, a local copy of the layer whose digest the caller has checked (a pull's download).
   */
  dir(layer: Digest, file?: string): Promise<string> {
    let pending = this.#inFlight.get(layer);
    if (pending === undefined) {
      pending = this.unpack(layer, file).finally(() => this.#inFlight.delete(layer));
      this.#inFlight.set(layer, pending);
    }
    return pending;
  }

  /** Creates the root, or closes one an earlier version left open, 0700. */
  #ensureRoot(): Promise<void> {
    this.#rootReady ??= (async () => {
      await mkdir(this.root, { recursive: true, mode: 0o700 });
      await chmod(this.root, 0o700);
    })();
    return this.#rootReady;
  }

  private async unpack(layer: Digest, file?: string): Promise<string> {
    await this.#ensureRoot();
    const dir = join(this.root, digestHex(layer).slice(0, SHORT));
    if (await exists(dir)) return dir;
    const tmp = join(this.root, `.tmp-${digestHex(layer).slice(0, SHORT)}-${process.pid}-${Date.now()}`);
    try {
      const source =
        file === undefined
          ? await this.blobs.getStream(layer)
          : createReadStream(file, { highWaterMark: READ_CHUNK });
      await applyLayer(source, tmp, { mode: "overlay" });
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
