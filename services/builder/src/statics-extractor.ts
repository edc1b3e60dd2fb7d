import { createHash } from "node:crypto";
import {
  dirImagePath,
  guestPathParts,
  imageStaticsOf,
  type MachineStatic,
  STATICS_MAX_FILE_BYTES,
  STATICS_MAX_FILES,
  STATICS_MAX_TOTAL_BYTES,
  type StaticFileEntry,
  type StaticsManifest,
  staticsFileName,
  staticsManifestName,
  staticsSetId,
} from "@hangar/config";
import { type BlobStore, type ResolvedImage, readImageFiles } from "@hangar/oci";
import type { MachineChange } from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import type { ObjectStore } from "@nats-io/obj";

/** One set to extract: the files `statics` name in `image`, for `app`. */
interface StaticsJob {
  app: string;
  image: string;
  statics: MachineStatic[];
  setId: string;
}

export interface StaticsExtractorOptions {
  /** The hangar-statics bucket. */
  bucket: ObjectStore;
  blobs: Pick<BlobStore, "getStream">;
  /** Finds (pulling if needed) the image a machine of `app` runs. */
  resolve: (app: string, ref: string) => Promise<ResolvedImage>;
  logger: Logger;
  limits?: { maxFileBytes: number; maxTotalBytes: number; maxFiles: number };
}

/**
 * Takes the files of each machine config's `[[statics]]` out of its image into the hangar-statics
 * bucket, where the proxy serves them from without the machine. It hears every machine change
 * (MACHINES, replayed at start): each image and list of statics is extracted once, as a set named
 * by staticsSetId, its manifest written last; a set whose manifest exists is done (several builders
 * may extract the same set: the objects are the same bytes under the same names). One set at a time.
 */
export class StaticsExtractor {
  private readonly seen = new Set<string>();
  private readonly queue: StaticsJob[] = [];
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly opts: StaticsExtractorOptions) {}

  /** A machine changed: extracts its config's statics if no one has yet. */
  onMachineChange(change: MachineChange): void {
    const m = change.state;
    if (m.status === "absent" || m.status === "destroyed" || m.status === "destroying") return;
    let config: unknown;
    try {
      config = JSON.parse(m.configJson);
    } catch {
      return;
    }
    const found = imageStaticsOf(config);
    if (found === undefined) return;
    const setId = staticsSetId(found.image, found.statics);
    const key = `${m.app}/${setId}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.queue.push({ app: m.app, setId, ...found });
    this.running ??= this.drain();
  }

  /** Resolves once every set asked for so far is extracted (or has failed). */
  async idle(): Promise<void> {
    for (let run = this.running; run !== undefined; run = this.running) await run;
  }

  /** Drops the sets not started yet and waits for the one being extracted. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.splice(0);
    return this.idle();
  }

  private async drain(): Promise<void> {
    try {
      for (let job = this.queue.shift(); job && !this.stopped; job = this.queue.shift()) {
        try {
          await this.extract(job);
        } catch (err) {
          // A later change of one of the app's machines tries again (an image pushed late, NATS back).
          this.seen.delete(`${job.app}/${job.setId}`);
          this.opts.logger.warn(
            { err, app: job.app, image: job.image, statics_set: job.setId },
            "could not extract the app's [[statics]] from its image; its machines serve those paths meanwhile",
          );
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  private async extract(job: StaticsJob): Promise<void> {
    const { bucket, logger } = this.opts;
    const manifestName = staticsManifestName(job.app, job.setId);
    const existing = await bucket.info(manifestName);
    if (existing !== null && !existing.deleted) return;
    if (dirImagePath(job.image) !== undefined) {
      logger.warn(
        { app: job.app, image: job.image },
        "[[statics]] of a dir: image are not served by the proxy; the machines serve those paths",
      );
      return;
    }
    const image = await this.opts.resolve(job.app, job.image);
    const folders = job.statics.map((s) => guestPathParts(s.guest_path));
    const limits = this.opts.limits ?? {
      maxFileBytes: STATICS_MAX_FILE_BYTES,
      maxTotalBytes: STATICS_MAX_TOTAL_BYTES,
      maxFiles: STATICS_MAX_FILES,
    };
    const blobs = this.opts.blobs;
    const { files, warnings } = await readImageFiles(
      (async function* () {
        for (const layer of image.manifest.layers) yield await blobs.getStream(layer.digest);
      })(),
      { folders: folders.filter((f): f is string[] => f !== undefined), ...limits },
    );
    for (const [i, s] of job.statics.entries()) {
      if (folders[i] === undefined)
        warnings.push(`guest_path ${s.guest_path} is not an absolute path: nothing served`);
    }

    const stored = new Set<string>();
    const byStatic: Array<Record<string, StaticFileEntry>> = job.statics.map(() => ({}));
    for (const [path, bytes] of files) {
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      for (const [i, folder] of folders.entries()) {
        if (folder === undefined) continue;
        const prefix = folder.join("/");
        const rel =
          prefix === "" ? path : path.startsWith(`${prefix}/`) ? path.slice(prefix.length + 1) : undefined;
        if (rel === undefined) continue;
        (byStatic[i] as Record<string, StaticFileEntry>)[rel] = { sha256, size: bytes.length };
      }
      if (stored.has(sha256)) continue;
      stored.add(sha256);
      await bucket.putBlob({ name: staticsFileName(job.app, job.setId, sha256) }, bytes);
    }
    const manifest: StaticsManifest = {
      image: job.image,
      digest: image.digest,
      statics: job.statics,
      files: byStatic,
      warnings,
    };
    await bucket.putBlob({ name: manifestName }, Buffer.from(JSON.stringify(manifest)));
    const context = { app: job.app, image: job.image, statics_set: job.setId, files: files.size };
    if (warnings.length > 0) {
      logger.warn({ ...context, warnings }, "[[statics]]: some files are not served by the proxy");
    } else {
      logger.info(context, "[[statics]] extracted: the proxy serves them");
    }
  }
}
