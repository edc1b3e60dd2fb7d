import type { ImageRegistry, LayerStore } from "@hangar/oci";
import type { Logger } from "@hangar/telemetry";
import { Histogram, type Registry } from "prom-client";
import type { ImageSource, PulledImage } from "./run-spec.js";

export interface ImagePullerOptions {
  registry: ImageRegistry;
  /** The host's content-addressed layer cache (`<state dir>/layers`). */
  layers: LayerStore;
  logger: Pick<Logger, "info">;
  metrics?: Registry;
}

/**
 * Brings OCI images onto the host: resolves the reference in Hangar's registry, then has every layer
 * unpacked in the shared layer cache (each layer once, whatever image or machine uses it).
 */
export class ImagePuller implements ImageSource {
  readonly #opts: ImagePullerOptions;
  readonly #seconds: Histogram;

  constructor(opts: ImagePullerOptions) {
    this.#opts = opts;
    this.#seconds = new Histogram({
      name: "hangar_host_image_pull_seconds",
      help: "Time to resolve an image and have all its layers unpacked on the host (cached layers included)",
      labelNames: ["outcome"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: opts.metrics ? [opts.metrics] : [],
    });
  }

  /** Resolves `ref` and returns its config and unpacked layers, top layer first. */
  async pull(ref: string): Promise<PulledImage> {
    const started = performance.now();
    const elapsed = () => (performance.now() - started) / 1000;
    try {
      const image = await this.#opts.registry.resolve(ref);
      const dirs: string[] = [];
      // One at a time: unpacking is disk-bound, and a 2-core host also runs the machines.
      for (const layer of image.manifest.layers) dirs.push(await this.#opts.layers.dir(layer.digest));
      const seconds = elapsed();
      this.#seconds.observe({ outcome: "ok" }, seconds);
      this.#opts.logger.info(
        {
          ref,
          repository: image.repository,
          digest: image.digest,
          layers: dirs.length,
          pull_ms: Math.round(seconds * 1000),
        },
        "image pulled",
      );
      return {
        repository: image.repository,
        digest: image.digest,
        config: image.config,
        lowers: dirs.reverse(),
      };
    } catch (err) {
      this.#seconds.observe({ outcome: "error" }, elapsed());
      throw err;
    }
  }
}
