import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Digest, digestHex } from "./digest.js";
import { type Descriptor, type ImageIndex, type ImageManifest, INDEX_TYPES, MediaType } from "./media.js";
import type { ImageRegistry } from "./registry.js";

const REF_NAME = "org.opencontainers.image.ref.name";

/**
 * Writes the image (or index) with manifest `digest` as an OCI image layout in `dir`, named `tag`
 * in index.json. An existing layout keeps its other images; an image of the same name is replaced.
 */
export async function exportImageLayout(
  registry: ImageRegistry,
  digest: Digest,
  dir: string,
  tag: string,
): Promise<void> {
  const blobsDir = join(dir, "blobs", "sha256");
  await mkdir(blobsDir, { recursive: true });
  const copy = async (d: Digest): Promise<void> => registry.blobs.toFile(d, join(blobsDir, digestHex(d)));

  const bytes = await registry.blobs.getBytes(digest);
  const doc = JSON.parse(Buffer.from(bytes).toString()) as (ImageManifest | ImageIndex) & {
    mediaType?: string;
  };
  const mediaType = doc.mediaType ?? ("manifests" in doc ? MediaType.ociIndex : MediaType.ociManifest);
  const manifests: Array<ImageManifest> = [];
  if (INDEX_TYPES.includes(mediaType)) {
    for (const m of (doc as ImageIndex).manifests) {
      manifests.push(
        JSON.parse(Buffer.from(await registry.blobs.getBytes(m.digest)).toString()) as ImageManifest,
      );
      await copy(m.digest);
    }
  } else manifests.push(doc as ImageManifest);
  for (const m of manifests) {
    for (const blob of [m.config, ...m.layers]) await copy(blob.digest);
  }
  await copy(digest);

  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const indexPath = join(dir, "index.json");
  const index: ImageIndex = await readFile(indexPath, "utf8").then(
    (text) => JSON.parse(text) as ImageIndex,
    () => ({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }),
  );
  const entry: Descriptor = { mediaType, digest, size: bytes.byteLength, annotations: { [REF_NAME]: tag } };
  index.manifests = [...index.manifests.filter((m) => m.annotations?.[REF_NAME] !== tag), entry];
  await writeFile(indexPath, JSON.stringify(index));
}
