import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type LayerStore, mountImageRoot, type ResolvedImage, unmountIfMounted } from "@hangar/oci";

/** An image's root filesystem mounted for a test to read and run, and how to take it away. */
export interface ImageRoot {
  root: string;
  release(): Promise<void>;
}

/**
 * Mounts `image`'s root filesystem (libs/oci mountImageRoot: an overlay of its layers, each
 * unpacked once into `layers`, so a base layer the builder's RUN steps unpacked is reused) in a
 * scratch folder, whose upper dir takes what running the image writes. Applying every layer into a
 * fresh folder instead copies the whole node base (~400 MB) per image.
 */
export async function scratchImageRoot(layers: LayerStore, image: ResolvedImage): Promise<ImageRoot> {
  const dir = await mkdtemp(join(tmpdir(), "hangar-builder-image-"));
  const root = join(dir, "root");
  const release = async () => {
    await unmountIfMounted(root);
    // Only once unmounted (unmountIfMounted throws otherwise): the removal must not go through the mount.
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await mountImageRoot(layers, image.manifest.layers, {
      upper: join(dir, "upper"),
      work: join(dir, "work"),
      target: root,
    });
  } catch (error) {
    await release();
    throw error;
  }
  return { root, release };
}
