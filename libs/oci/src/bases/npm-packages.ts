import { createHash, randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SystemToolError } from "../errors.js";
import { run } from "../exec.js";

/** The npm registry the Node, npm, corepack and yarn packages come from (npm's own setting names it). */
export function npmRegistryUrl(): string {
  return (process.env.npm_config_registry ?? "https://registry.npmjs.org").replace(/\/+$/, "");
}

/** How long a package's version list is used before the registry is asked again. */
const METADATA_TTL_MS = 24 * 3600_000;

interface PackageMetadata {
  versions: Record<string, { dist: { tarball: string; integrity?: string; shasum?: string } }>;
}

const reading = new Map<string, Promise<PackageMetadata>>();

/**
 * A package's versions as the npm registry lists them: from the host cache when fresh, else from the
 * registry (and cached); a stale cached list is used when the registry cannot be reached.
 */
export function packageMetadata(cacheDir: string, name: string): Promise<PackageMetadata> {
  const file = join(cacheDir, "npm", `${name}.json`);
  let pending = reading.get(file);
  if (pending === undefined) {
    pending = readMetadata(file, name).finally(() => reading.delete(file));
    reading.set(file, pending);
  }
  return pending;
}

async function readMetadata(file: string, name: string): Promise<PackageMetadata> {
  const cached = await stat(file).catch(() => undefined);
  if (cached && Date.now() - cached.mtimeMs < METADATA_TTL_MS) {
    return JSON.parse(await readFile(file, "utf8")) as PackageMetadata;
  }
  const url = `${npmRegistryUrl()}/${name}`;
  try {
    const res = await fetch(url, { headers: { accept: "application/vnd.npm.install-v1+json" } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = (await res.json()) as PackageMetadata;
    const versions = Object.fromEntries(Object.entries(body.versions).map(([v, m]) => [v, { dist: m.dist }]));
    await mkdir(dirname(file), { recursive: true });
    // Unique per writer (processes, and tests' registries in one process): the rename is the only shared step.
    const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
    await writeFile(tmp, JSON.stringify({ versions }));
    await rename(tmp, file);
    return { versions };
  } catch (error) {
    if (cached) return JSON.parse(await readFile(file, "utf8")) as PackageMetadata;
    throw new SystemToolError(
      `cannot read ${url} to find the versions of ${name} (${(error as Error).message}); ` +
        "the platform-made base images need the npm registry once per host",
      { cause: error },
    );
  }
}

/**
 * Downloads `name@version`'s tarball (checked against the registry's integrity hash) and unpacks its
 * `package/` folder into `dest`, every file owned by root.
 */
export async function unpackPackage(
  cacheDir: string,
  name: string,
  version: string,
  dest: string,
): Promise<void> {
  const meta = await packageMetadata(cacheDir, name);
  const dist = meta.versions[version]?.dist;
  if (dist === undefined) {
    throw new SystemToolError(`the npm registry has no ${name}@${version}`);
  }
  // An SRI string ("sha512-<base64>"), or for old packages only a hex sha1.
  const sri = /^(sha\d+)-(\S+)/.exec(dist.integrity ?? "");
  const algorithm = sri?.[1] ?? "sha1";
  const expected = sri?.[2] ?? Buffer.from(dist.shasum ?? "", "hex").toString("base64");
  const tarball = `${dest}.download.tgz`;
  await mkdir(dirname(tarball), { recursive: true });
  const res = await fetch(dist.tarball);
  if (!res.ok || res.body === null) {
    throw new SystemToolError(`cannot download ${dist.tarball}: HTTP ${res.status}`);
  }
  const hash = createHash(algorithm);
  await pipeline(
    Readable.fromWeb(res.body as import("node:stream/web").ReadableStream),
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    }),
    createWriteStream(tarball),
  );
  const actual = hash.digest("base64");
  if (actual !== expected) {
    await rm(tarball, { force: true });
    throw new SystemToolError(
      `${dist.tarball} does not match the registry's ${algorithm} (${expected}, got ${actual}); not used`,
    );
  }
  await mkdir(dest, { recursive: true });
  await run("tar", [
    "-xzf",
    tarball,
    "-C",
    dest,
    "--strip-components=1",
    "--no-same-owner",
    "--no-same-permissions",
  ]);
  await rm(tarball, { force: true });
}
