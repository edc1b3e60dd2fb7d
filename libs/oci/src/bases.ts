import {
  chmod,
  chown,
  copyFile,
  cp,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  realpath,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { ImageNotFoundError, UnknownBaseImageError } from "./errors.js";
import { run } from "./exec.js";
import { writeImage } from "./image-writer.js";
import { createLayer, type LayerFile } from "./layer.js";
import { hostArchitecture, type ImageConfig } from "./media.js";
import { parseImageRef } from "./ref.js";
import type { ImageRegistry, ResolvedImage } from "./registry.js";

/** Label on Hangar-made node base images: the host Node version they were made from. */
export const NODE_VERSION_LABEL = "dev.hangar.base.node-version";

/** Host tools a node base image carries so that RUN steps can do ordinary shell work. */
const TOOLS = [
  "env",
  "ls",
  "cat",
  "mkdir",
  "cp",
  "mv",
  "rm",
  "ln",
  "chmod",
  "chown",
  "touch",
  "sed",
  "grep",
  "tar",
];

const NODE_MAJOR = process.versions.node.split(".")[0] as string;
const NODE_REPOSITORY = "library/node";
const NODE_TAGS = [NODE_MAJOR, `${NODE_MAJOR}-slim`, "latest"];
// A fixed time for every entry, so the same host runtime always makes the same layer digest.
const EPOCH = new Date(0);

/** Names FROM may use for the base images Hangar makes itself. */
export function availableBaseImages(): string[] {
  return ["scratch", "node", `node:${NODE_MAJOR}`, `node:${NODE_MAJOR}-slim`];
}

const building = new WeakMap<ImageRegistry, Promise<ResolvedImage>>();

/**
 * The base image a FROM names: "scratch", a node base made from the host's Node runtime (once per
 * registry, remade when the host's Node version changes), or any image already in the registry.
 * Throws UnknownBaseImageError for anything else, since no public registry is reachable.
 */
export async function ensureBaseImage(
  registry: ImageRegistry,
  name: string,
): Promise<ResolvedImage | "scratch"> {
  if (name === "scratch") return "scratch";
  const ref = parseImageRef(name);
  const isHostNode =
    ref.repository === NODE_REPOSITORY &&
    ref.digest === undefined &&
    (ref.tag === undefined || NODE_TAGS.includes(ref.tag));
  if (isHostNode) {
    let pending = building.get(registry);
    if (pending === undefined) {
      pending = ensureNodeBase(registry).finally(() => building.delete(registry));
      building.set(registry, pending);
    }
    return pending;
  }
  try {
    return await registry.resolve(name);
  } catch (error) {
    if (error instanceof ImageNotFoundError) throw new UnknownBaseImageError(name, availableBaseImages());
    throw error;
  }
}

async function ensureNodeBase(registry: ImageRegistry): Promise<ResolvedImage> {
  const ref = `${NODE_REPOSITORY}:${NODE_MAJOR}`;
  const existing = await registry.resolve(ref).catch((error: unknown) => {
    if (error instanceof ImageNotFoundError) return undefined;
    throw error;
  });
  // An image without the label was pushed by someone (a real node image): it wins over a home-made one.
  const label = existing?.config.config.Labels?.[NODE_VERSION_LABEL];
  if (existing && (label === undefined || label === process.version)) return existing;

  const work = await mkdtemp(join(tmpdir(), "hangar-node-base-"));
  try {
    const layer = await nodeBaseLayer(work);
    await registry.blobs.putFile(layer.file, layer.digest);
    const config: ImageConfig = {
      created: EPOCH.toISOString(),
      architecture: hostArchitecture(),
      os: "linux",
      config: {
        Env: [
          "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
          `NODE_VERSION=${process.versions.node}`,
        ],
        Cmd: ["node"],
        WorkingDir: "/",
        Labels: { [NODE_VERSION_LABEL]: process.version },
      },
      rootfs: { type: "layers", diff_ids: [layer.diffId] },
      history: [
        {
          created: EPOCH.toISOString(),
          created_by: `hangar: node ${process.version} from the host's runtime`,
        },
      ],
    };
    for (const tag of NODE_TAGS) {
      await writeImage(registry, { repository: NODE_REPOSITORY, tag, config, layers: [layer] });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return registry.resolve(ref);
}

/**
 * Where made base layers are kept on this host, so that every registry on it (each `npm start` data
 * folder, each test run's nats-server) stores the same file instead of packing ~100 MB again.
 */
function baseLayerCacheDir(): string {
  return (
    process.env.HANGAR_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "hangar")
  );
}

/** The node base layer of this host's runtime: from the host cache, or made (and cached) now. */
async function nodeBaseLayer(work: string): Promise<LayerFile> {
  const cached = join(baseLayerCacheDir(), `node-base-${process.version}-${hostArchitecture()}`);
  const meta = await readFile(`${cached}.json`, "utf8").then(
    (text) => JSON.parse(text) as Omit<LayerFile, "file">,
    () => undefined,
  );
  // The digest is checked again when the blob store takes the file: a damaged cache fails loudly there.
  if (meta && (await stat(`${cached}.tar.gz`).catch(() => undefined))?.size === meta.size) {
    return { ...meta, file: `${cached}.tar.gz` };
  }
  const rootfs = join(work, "rootfs");
  await stageNodeRootfs(rootfs);
  // Level 1: the node binary alone is ~100 MB, and level 6 takes 2.5x as long for 10% less.
  const layer = await createLayer(rootfs, join(work, "layer.tar.gz"), { mtime: EPOCH, gzipLevel: 1 });
  // Best effort: a host whose cache folder is not writable just makes the layer each time.
  await mkdir(dirname(cached), { recursive: true })
    .then(async () => {
      // tmp + rename, so that concurrent makers never leave a half-written file under the final name.
      const tmp = `${cached}.${process.pid}.tmp`;
      await copyFile(layer.file, tmp);
      await rename(tmp, `${cached}.tar.gz`);
      const { file: _file, ...rest } = layer;
      await writeFile(`${cached}.json.${process.pid}.tmp`, JSON.stringify(rest));
      await rename(`${cached}.json.${process.pid}.tmp`, `${cached}.json`);
    })
    .catch(() => undefined);
  return layer;
}

/** Lays out the node base image's filesystem in `rootfs` from what the host has. */
async function stageNodeRootfs(rootfs: string): Promise<void> {
  for (const dir of [
    "etc",
    "proc",
    "dev",
    "sys",
    "usr/local/bin",
    "usr/local/lib/node_modules",
    "home/node",
  ]) {
    await mkdir(join(rootfs, dir), { recursive: true, mode: 0o755 });
  }
  await mkdir(join(rootfs, "tmp"));
  await chmod(join(rootfs, "tmp"), 0o1777);
  await mkdir(join(rootfs, "root"), { mode: 0o700 });
  await chown(join(rootfs, "home/node"), 1000, 1000);

  const node = await realpath(process.execPath);
  await copyFile(node, join(rootfs, "usr/local/bin/node"));
  await chmod(join(rootfs, "usr/local/bin/node"), 0o755);
  await cp(await findNpm(node), join(rootfs, "usr/local/lib/node_modules/npm"), {
    recursive: true,
    verbatimSymlinks: true,
  });
  await symlink("../lib/node_modules/npm/bin/npm-cli.js", join(rootfs, "usr/local/bin/npm"));
  await symlink("../lib/node_modules/npm/bin/npx-cli.js", join(rootfs, "usr/local/bin/npx"));

  const tools: string[] = [];
  for (const tool of TOOLS) {
    const found = await onPath(tool);
    if (found) tools.push(found);
  }
  await copyHostExecutables(rootfs, ["/bin/sh", ...tools], [node]);

  await writeFile(
    join(rootfs, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n",
  );
  await writeFile(join(rootfs, "etc/group"), "root:x:0:\nnode:x:1000:\n");
  const certs = await lstat("/etc/ssl/certs").catch(() => undefined);
  if (certs)
    await cp("/etc/ssl/certs", join(rootfs, "etc/ssl/certs"), { recursive: true, dereference: true });
}

/**
 * Copies host executables into `rootfs` at the paths they have on the host (their directories'
 * real paths), with every shared library ldd finds for them and for `alsoLibsOf`.
 */
export async function copyHostExecutables(
  rootfs: string,
  executables: string[],
  alsoLibsOf: string[] = [],
): Promise<void> {
  // Mirror a merged /usr (/bin -> usr/bin, ...) so that paths ldd reports resolve the same way inside.
  await mkdir(rootfs, { recursive: true });
  for (const top of ["bin", "sbin", "lib", "lib32", "lib64", "libx32"]) {
    const st = await lstat(`/${top}`).catch(() => undefined);
    const there = await lstat(join(rootfs, top)).catch(() => undefined);
    if (st?.isSymbolicLink() && there === undefined)
      await symlink(await readlink(`/${top}`), join(rootfs, top));
  }
  const wanted = new Set(executables);
  for (const binary of [...executables, ...alsoLibsOf]) {
    for (const lib of await sharedLibraries(binary)) wanted.add(lib);
  }
  for (const path of wanted) {
    const dest = join(rootfs, await realpath(dirname(path)), basename(path));
    await mkdir(dirname(dest), { recursive: true });
    await copyFile(await realpath(path), dest);
    await chmod(dest, (await lstat(await realpath(path))).mode & 0o7777);
  }
}

/** The absolute paths of the shared libraries (and loader) a binary needs; none for a static binary or script. */
async function sharedLibraries(binary: string): Promise<string[]> {
  const { code, stdout } = await run("ldd", [binary], { allowFailure: true });
  if (code !== 0) return [];
  const libs: string[] = [];
  for (const line of stdout.split("\n")) {
    const m = /=>\s+(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

async function findNpm(node: string): Promise<string> {
  const beside = join(dirname(dirname(node)), "lib/node_modules/npm");
  if (await lstat(join(beside, "package.json")).catch(() => undefined)) return beside;
  const { stdout } = await run("npm", ["root", "-g"]);
  return join(stdout.trim(), "npm");
}

// The system's own directories only: PATH may lead to shims or wrappers that need more than the image has.
async function onPath(name: string): Promise<string | undefined> {
  for (const dir of ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]) {
    const path = join(dir, name);
    const st = await lstat(path).catch(() => undefined);
    if (st && (st.isFile() || st.isSymbolicLink())) return path;
  }
  return undefined;
}
