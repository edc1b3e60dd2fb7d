import type { Digest } from "./digest.js";
import { type ImageConfig, type ImageManifest, MediaType } from "./media.js";
import type { ImageRegistry } from "./registry.js";

/** Stores an image's config and OCI manifest (its layers must already be blobs), tags it, and returns the manifest digest. */
export async function writeImage(
  registry: ImageRegistry,
  o: {
    repository: string;
    tag: string;
    config: ImageConfig;
    layers: Array<{ digest: Digest; size: number }>;
    annotations?: Record<string, string>;
  },
): Promise<Digest> {
  const config = await registry.blobs.putBytes(Buffer.from(JSON.stringify(o.config)));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: config.digest, size: config.size },
    layers: o.layers.map((l) => ({ mediaType: MediaType.ociLayerTarGzip, digest: l.digest, size: l.size })),
    ...(o.annotations !== undefined && { annotations: o.annotations }),
  };
  return registry.putManifest(
    o.repository,
    o.tag,
    Buffer.from(JSON.stringify(manifest)),
    MediaType.ociManifest,
  );
}
