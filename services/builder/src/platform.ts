import { join } from "node:path";
import {
  BlobStore,
  ImageRegistry,
  LayerStore,
  platformBaseImages,
  type RegistryCredentials,
  resolveImage,
  type UpstreamRegistries,
} from "@hangar/oci";
import type { NatsConnection } from "@nats-io/transport-node";
import { BuildContextStore } from "./context.js";
import type { BuildDeps } from "./image-build.js";
import { LayerCache } from "./layer-cache.js";

/** Bucket names, all overridable so that tests (and tenants) do not share them. */
export interface BuilderBuckets {
  blobs?: string;
  registry?: string;
  cache?: string;
  contexts?: string;
}

/** Where FROM images come from besides Hangar's registry and the platform's bases. */
export interface BuilderImageSource {
  /** The remote registries pulled through Hangar's registry (HANGAR_REGISTRY_UPSTREAMS). */
  upstreams?: UpstreamRegistries;
  /** An org's credentials for a registry host (its HANGAR_REGISTRY_AUTH secret). */
  credentials?: (org: string, registryHost: string) => Promise<RegistryCredentials | undefined>;
  /** Where unpacked layers are kept (HANGAR_LAYERS_DIR); `layers` in the data folder by default. */
  layersDir?: string;
}

/** Opens what a builder works with: blobs, registry, layer cache, context store, unpacked layers. */
export async function openBuildDeps(
  nc: NatsConnection,
  dataDir: string,
  buckets: BuilderBuckets = {},
  /** Replicas of the buckets the builder is first to create (HANGAR_STREAM_REPLICAS). */
  replicas = 1,
  images: BuilderImageSource = {},
): Promise<{
  deps: BuildDeps;
  contexts: BuildContextStore;
  /** FROM's resolver for a build of an app of `org`: pulls with the org's registry credentials. */
  resolveImageFor: (org: string) => BuildDeps["resolveImage"];
}> {
  const opts = (bucket: string | undefined) => ({ ...(bucket ? { bucket } : {}), replicas });
  const blobs = await BlobStore.open(nc, opts(buckets.blobs));
  const registry = await ImageRegistry.open(nc, blobs, opts(buckets.registry));
  const cache = await LayerCache.open(nc, blobs, opts(buckets.cache));
  const contexts = await BuildContextStore.open(nc, opts(buckets.contexts));
  const layers = new LayerStore(images.layersDir ?? join(dataDir, "layers"), blobs);
  const bases = platformBaseImages(registry);
  const { upstreams = {}, credentials } = images;
  const deps: BuildDeps = {
    blobs,
    registry,
    layers,
    cache,
    // Hangar's registry, else pulled through it from an upstream, else a base the platform makes
    // (debian, node, postgres) in the host cache.
    resolveImage: (ref, onProgress) =>
      resolveImage(ref, { registry, upstreams, bases, ...(onProgress ? { onProgress } : {}) }),
  };
  const resolveImageFor =
    (org: string): BuildDeps["resolveImage"] =>
    (ref, onProgress) =>
      resolveImage(ref, {
        registry,
        upstreams,
        bases,
        ...(onProgress ? { onProgress } : {}),
        ...(credentials ? { credentials: (host: string) => credentials(org, host) } : {}),
      });
  return { deps, contexts, resolveImageFor };
}
