import { createHash } from "node:crypto";
import { chown, mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Digest } from "../digest.js";
import { writeImage } from "../image-writer.js";
import { hostArchitecture, type ImageConfig } from "../media.js";
import type { ImageRegistry } from "../registry.js";
import { DEBIAN_SUITE } from "./catalog.js";
import {
  BASE_EPOCH,
  DEBIAN_EXTRA_PACKAGES,
  debianLayer,
  finishDebianRootfs,
  mmdebstrap,
  mmdebstrapArgs,
} from "./debian.js";
import { cachedLayers, defaultCacheDir } from "./host-cache.js";

/** The uid and gid nats-server runs as in the image (user `hangar`, as the service images). */
export const NATS_IMAGE_UID = 10001;

/** Where the image's nats-server keeps JetStream's data (a volume). */
export const NATS_IMAGE_DATA = "/data";

const USER_HOOK =
  `--customize-hook=chroot "$1" useradd --uid ${NATS_IMAGE_UID} --user-group --no-create-home ` +
  `--home-dir ${NATS_IMAGE_DATA} --shell /usr/sbin/nologin hangar`;
const PACKAGES = [...DEBIAN_EXTRA_PACKAGES, "nats-server"];

// Part of the cache key: a change of how the layer is made never reuses one made the old way.
const RECIPE = createHash("sha256")
  .update(JSON.stringify([1, mmdebstrapArgs("/", PACKAGES, [USER_HOOK]), BASE_EPOCH]))
  .digest("hex")
  .slice(0, 12);

/**
 * Makes the nats-server image from Debian packages (bookworm minbase, slim, plus Debian's
 * nats-server), its one layer cached in `cacheDir`/images and verified by digest, and writes it to
 * `registry` as `repository:tag`. It runs `nats-server` as uid 10001 with /data for JetStream;
 * arguments are nats-server's (`-js -sd /data`, `-c <file>`). Returns the manifest digest.
 */
export async function makeNatsServerImage(
  registry: ImageRegistry,
  o: { repository: string; tag: string; cacheDir?: string },
  onProgress: (line: string) => void = () => {},
): Promise<Digest> {
  const arch = hostArchitecture();
  const [layer] = await cachedLayers(
    join(o.cacheDir ?? defaultCacheDir(), "images"),
    [`nats-server-${DEBIAN_SUITE}-${arch}-${RECIPE}`],
    async (work) => {
      const rootfs = join(work, "rootfs");
      await mmdebstrap(rootfs, PACKAGES, onProgress, [USER_HOOK]);
      await finishDebianRootfs(rootfs);
      await mkdir(join(rootfs, NATS_IMAGE_DATA), { recursive: true, mode: 0o755 });
      await chown(join(rootfs, NATS_IMAGE_DATA), NATS_IMAGE_UID, NATS_IMAGE_UID);
      onProgress("nats-server: packing the layer");
      return [{ layer: await debianLayer(rootfs, join(work, "layer.tar.gz"), true), extra: {} }];
    },
    onProgress,
  );
  if (layer === undefined) throw new Error("the nats-server layer was not made");
  if (!(await registry.blobs.has(layer.digest))) await registry.blobs.putFile(layer.file, layer.digest);
  const config: ImageConfig = {
    created: BASE_EPOCH.toISOString(),
    architecture: arch,
    os: "linux",
    config: {
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      Entrypoint: ["/usr/sbin/nats-server"],
      User: `${NATS_IMAGE_UID}:${NATS_IMAGE_UID}`,
      WorkingDir: NATS_IMAGE_DATA,
      ExposedPorts: { "4222/tcp": {}, "6222/tcp": {}, "8222/tcp": {} },
      Volumes: { [NATS_IMAGE_DATA]: {} },
      Labels: { "dev.hangar.base": `nats-server: Debian's nats-server on ${DEBIAN_SUITE} (slim)` },
    },
    rootfs: { type: "layers", diff_ids: [layer.diffId] },
    history: [
      {
        created: BASE_EPOCH.toISOString(),
        created_by: `hangar: mmdebstrap --variant=minbase ${DEBIAN_SUITE} (slim) + nats-server, user hangar (${NATS_IMAGE_UID})`,
      },
    ],
  };
  return writeImage(registry, {
    repository: o.repository,
    tag: o.tag,
    config,
    layers: [{ digest: layer.digest, size: layer.size }],
  });
}
