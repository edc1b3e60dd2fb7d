import {
  cacheFilled,
  type ImageRegistry,
  type ImageSourceOptions,
  type LayerStore,
  parseImageRef,
  type RegistryCredentials,
  reachesForeignApp,
  resolveImage,
  type UpstreamRegistries,
} from "@hangar/oci";
import type { Logger } from "@hangar/telemetry";
import { Histogram, type Registry } from "prom-client";
import type { ImageOwner, ImageSource, PulledImage } from "./run-spec.js";

/** An image a machine may not run: another org's app's, refused as if it did not exist. */
export class ForeignImageError extends Error {
  override name = "ForeignImageError";
}

export interface ImagePullerOptions {
  registry: ImageRegistry;
  /** The host's content-addressed layer cache (`<state dir>/layers`). */
  layers: LayerStore;
  logger: Pick<Logger, "info" | "warn">;
  metrics?: Registry;
  /**
   * Where pulled layers are spooled while the pull unpacks them (`<state dir>/pulls`): the pull ends
   * once they are unpacked and verified, and their cache fill into Hangar's registry goes on after,
   * while the machine starts. Unset: a pull stores each layer as it arrives and ends once recorded.
   */
  spoolDir?: string;
  /** The remote registries images are pulled from through Hangar's registry (HANGAR_REGISTRY_UPSTREAMS). */
  upstreams?: UpstreamRegistries;
  /** An org's credentials for a registry host (its HANGAR_REGISTRY_AUTH secret). */
  credentials?: (org: string, registryHost: string) => Promise<RegistryCredentials | undefined>;
  /** The platform-made bases, for short names no upstream serves. */
  bases?: ImageSourceOptions["bases"];
}

/**
 * Brings OCI images onto the host: resolves the reference (resolveImage: Hangar's registry, pulled
 * through it from an upstream with the machine's org's credentials, or a platform-made base), then
 * has every layer unpacked in the shared layer cache (each layer once, whatever image or machine uses it).
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

  /**
   * Resolves `ref` and returns its config and unpacked layers, top layer first. With `owner`, an image
   * of another org's app is refused (ForeignImageError): the gateway checks at create and update, and
   * this check at each pull covers a name another org took since (e.g. an app named `redis` pushed
   * after a machine was made with `redis:7`).
   */
  /** Resolves once the cache fills of the pulls that ended so far have ended (stored, or failed and logged). */
  cacheFilled(): Promise<void> {
    return cacheFilled(this.#opts.registry);
  }

  async pull(ref: string, owner?: ImageOwner): Promise<PulledImage> {
    const started = performance.now();
    const elapsed = () => (performance.now() - started) / 1000;
    try {
      if (owner && (await this.#foreign(ref, owner))) throw new ForeignImageError(`image ${ref} not found`);
      const { registry, upstreams = {}, credentials, bases, logger } = this.#opts;
      const image = await resolveImage(ref, {
        registry,
        upstreams,
        ...(owner && credentials ? { credentials: (host: string) => credentials(owner.org, host) } : {}),
        ...(bases ? { bases } : {}),
        onProgress: (line) => logger.info({ ref }, line),
        // A pulled layer is unpacked from its download as it is stored (or spooled), not read back after.
        onLayerStream: (digest, source) => this.#opts.layers.dir(digest, source),
        ...(this.#opts.spoolDir === undefined ? {} : { spoolDir: this.#opts.spoolDir }),
        onCacheFillError: (err) =>
          logger.warn(
            { err, ref },
            "the pulled image was not stored in Hangar's registry; the next pull fetches it again",
          ),
      });
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

  /** Whether `ref` reaches another org's app: the orgs of the apps it may name are looked up first. */
  async #foreign(ref: string, owner: ImageOwner): Promise<boolean> {
    let repository: string;
    try {
      repository = parseImageRef(ref).repository;
    } catch {
      return false;
    }
    // The apps the ref may name: its repository's first segment, and without `library/` (the
    // resolver's fallback).
    const apps = [repository, repository.replace(/^library\//, "")].map((r) => r.split("/")[0] ?? "");
    const orgs = new Map<string, string | undefined>();
    for (const app of new Set(apps)) orgs.set(app, await owner.orgOf(app));
    const registry = this.#opts.registry;
    return reachesForeignApp(
      ref,
      owner.org,
      (app) => orgs.get(app),
      async (repo, reference) => (await registry.getManifest(repo, reference)) !== undefined,
      this.#opts.upstreams,
    );
  }
}
