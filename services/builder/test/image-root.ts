import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type LayerStore, mountOverlay, type ResolvedImage, unmountIfMounted } from "@hangar/oci";

/** An image's root filesystem mounted for a test to read and run, and how to take it away. */
export interface ImageRoot {
  root: string;
  release(): Promise<void>;
}

/**
 * Mounts `image`'s root filesystem as a machine sees it: an overlay of its layers, each unpacked
 * from the blob store into `layers` (once: a base layer the builder's RUN steps unpacked is
 * reused), with a scratch upper dir so that running the image writes nothing into them.
 * Applying every layer into a fresh folder instead copies the whole node base (~400 MB) per image.
 */
export async function mountImageRoot(layers: LayerStore, image: ResolvedImage): Promise<ImageRoot> {
  const dir = await mkdtemp(join(tmpdir(), "hangar-builder-image-"));
  const root = join(dir, "root");
  const release = async () => {
    await unmountIfMounted(root);
    // Only once unmounted (unmountIfMounted throws otherwise): the removal must not go through the mount.
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const lowers = await Promise.all(image.manifest.layers.map((l) => layers.dir(l.digest)));
    await mountOverlay({
      lowers: lowers.reverse(),
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
