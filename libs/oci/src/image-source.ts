import { PassThrough, Readable, Transform } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { baseSpecOf, platformBaseNames } from "./bases/catalog.js";
import type { BlobStore } from "./blob-store.js";
import { type Digest, DigestHasher, isDigest } from "./digest.js";
import { BlobCorruptedError, ImageNotFoundError, InvalidReferenceError } from "./errors.js";
import type { LayerSource } from "./layer-store.js";
import {
  choosePlatform,
  hostArchitecture,
  type ImageIndex,
  type ImageManifest,
  INDEX_TYPES,
} from "./media.js";
import {
  DEFAULT_REGISTRY_HOST,
  formatImageRef,
  type ImageRef,
  isRepositoryName,
  parseImageRef,
} from "./ref.js";
import type { ImageRegistry, ResolvedImage } from "./registry.js";
import { RemoteRegistry } from "./remote/client.js";
import type { RegistryCredentials } from "./remote/credentials.js";

/** The remote registries pulls may reach: a ref's host (`docker.io`, `ghcr.io`, `localhost:5000`) -> its API's base URL. */
export type UpstreamRegistries = Readonly<Record<string, string>>;

/** What resolveImage works with. */
export interface ImageSourceOptions {
  /** Hangar's registry: the pull-through cache. */
  registry: ImageRegistry;
  /** Which remote registries exist (HANGAR_REGISTRY_UPSTREAMS); none on development machines. */
  upstreams: UpstreamRegistries;
  /** The org's credentials for a registry host (its HANGAR_REGISTRY_AUTH secret), if any. */
  credentials?: (registryHost: string) => Promise<RegistryCredentials | undefined>;
  /** The maker of platform-made bases (libs/oci/src/bases/), for short names no upstream serves. */
  bases?: { make(ref: string, onProgress?: (line: string) => void): Promise<ResolvedImage | undefined> };
  /** Human progress lines ("pulling docker.io/library/node:20 (3/7 layers, 41 MB)"). */
  onProgress?: (line: string) => void;
  /**
   * Called with each pulled layer's bytes as they arrive, while the same bytes go into the blob store:
   * a host unpacks the layer from there (LayerStore.dir with a `source`) instead of reading it back
   * after. The stream must be read to its end; `source.verified` settles once the whole layer has
   * arrived, and rejects when it is not the announced digest and size (then nothing of it is stored).
   */
  onLayerStream?: (digest: Digest, source: LayerSource) => Promise<unknown>;
}

/** Docker Hub, where a ref without a registry host points. */
export const DOCKER_HUB = "docker.io";

/** Blobs fetched at once by one pull: enough to hide a round trip, few enough for a 2-core host. */
const PARALLEL_BLOBS = 3;

/** What each reader of a blob being fetched may fall behind the other by, in chunks (of about 64 KiB). */
const TEE_CHUNKS = 16;

/**
 * Parses HANGAR_REGISTRY_UPSTREAMS: a JSON object of registry host -> http(s) base URL, e.g.
 * `{"docker.io":"https://registry-1.docker.io"}`; an empty string means none.
 */
export function parseUpstreams(json: string): UpstreamRegistries {
  if (json.trim() === "") return {};
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    throw new Error(
      `upstream registries must be a JSON object such as {"docker.io":"https://registry-1.docker.io"}`,
    );
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new Error(`upstream registries must be a JSON object of registry host -> URL`);
  }
  for (const [host, url] of Object.entries(doc)) {
    if (typeof url !== "string" || !/^https?:\/\/[^/]+/.test(url)) {
      throw new Error(`upstream registry ${host} needs an http(s) URL, not ${JSON.stringify(url)}`);
    }
  }
  return doc as UpstreamRegistries;
}

/** The registry host a ref pulls from: its own, or docker.io for a ref without one. */
export function registryHostOf(ref: ImageRef): string {
  return ref.registry ?? DOCKER_HUB;
}

/** Whether `ref` (parsed) names an image of a configured upstream registry: never an app's image. */
export function isUpstreamRef(ref: ImageRef, upstreams: UpstreamRegistries): boolean {
  return (
    ref.registry !== undefined &&
    ref.registry !== DEFAULT_REGISTRY_HOST &&
    upstreams[ref.registry] !== undefined
  );
}

/**
 * The repository of Hangar's registry that caches an upstream's repository: `docker.io/library/node`,
 * `localhost_5000/x/app` (a port's colon is no repository character). No app is named with a dot or
 * an underscore, so no tenant can push into it.
 */
export function cacheRepository(host: string, repository: string): string {
  const name = `${host.toLowerCase().replace(/:/g, "_")}/${repository}`;
  if (!isRepositoryName(name))
    throw new InvalidReferenceError(`cannot cache ${host}/${repository}: not a valid repository name`);
  return name;
}

/**
 * Finds the image `ref` names, pulling it through Hangar's registry when it comes from an upstream:
 * (1) Hangar's registry has it (for a short name, `library/x` and then `x`; for an upstream's ref, its
 * cache repository); (2) its registry host is an upstream: pulled (every blob verified, each stored
 * once), recorded in the cache repository only when complete, and resolved from there; (3) a
 * short name the platform makes (`bases`); (4) ImageNotFoundError naming the ref and what exists.
 * A ref of another host (Hangar's own among them) resolves in Hangar's registry only.
 */
export async function resolveImage(ref: string, opts: ImageSourceOptions): Promise<ResolvedImage> {
  const parsed = parseImageRef(ref);
  const host = registryHostOf(parsed);
  const reference = parsed.digest ?? parsed.tag ?? "latest";
  const hub = host === DOCKER_HUB;
  // The member image is the platform's alone: always this checkout's (a tag an older Hangar pushed
  // would keep an old agent), and never looked up upstream, where anyone may publish hangar/*.
  if (opts.bases !== undefined && baseSpecOf(ref)?.kind === "postgres-member") {
    const made = await opts.bases.make(ref, opts.onProgress);
    if (made) return made;
  }
  if (!hub && opts.upstreams[host] === undefined) return opts.registry.resolve(ref);
  if (hub) {
    // Hangar's own copy of an official image (a base the platform made, or one an operator pushed).
    const { registry: _host, ...local } = parsed;
    const own = await opts.registry
      .resolve(parsed.registry === undefined ? ref : formatImageRef(local))
      .catch((error: unknown) => {
        if (error instanceof ImageNotFoundError) return undefined;
        throw error;
      });
    if (own) return own;
  }
  const url = opts.upstreams[host];
  if (url !== undefined) {
    const cache = cacheRepository(host, parsed.repository);
    const cached = await opts.registry.resolveIn(cache, reference, ref);
    if (cached) return cached;
    const digest = await pullOnce(opts.registry, `${cache}@${reference}`, () =>
      pull(ref, parsed.repository, reference, cache, url, host, opts),
    );
    const pulled = await opts.registry.resolveIn(cache, digest, ref);
    if (pulled) return pulled;
  }
  if (hub) {
    const made = await opts.bases?.make(ref, opts.onProgress);
    if (made) return made;
  }
  throw imageNotFoundError(ref, opts.upstreams, await opts.registry.tags(parsed.repository));
}

/**
 * The error resolveImage throws for `ref` when nothing has it, naming the tags its repository has
 * (`tags`). A caller refusing a ref it may not see (another org's app) throws this with no tags,
 * so the refusal reads exactly as if the image did not exist.
 */
export function imageNotFoundError(
  ref: string,
  upstreams: UpstreamRegistries,
  tags: readonly string[] = [],
): ImageNotFoundError {
  const parsed = parseImageRef(ref);
  const host = registryHostOf(parsed);
  const url = upstreams[host];
  // A ref of a host that is neither Docker Hub nor an upstream resolves in Hangar's registry only.
  if (host !== DOCKER_HUB && url === undefined) return new ImageNotFoundError(ref);
  return new ImageNotFoundError(
    ref,
    `image ${ref} is not in Hangar's registry` +
      (tags.length > 0 ? ` (${parsed.repository} has tags ${tags.join(", ")})` : "") +
      (url === undefined
        ? `, no upstream registry is configured for ${host} (HANGAR_REGISTRY_UPSTREAMS), and it is not a base this platform makes (${platformBaseNames().join(", ")})`
        : ""),
  );
}

// Concurrent pulls of one image share one download (per registry instance).
const inFlight = new WeakMap<ImageRegistry, Map<string, Promise<Digest>>>();

function pullOnce(registry: ImageRegistry, key: string, run: () => Promise<Digest>): Promise<Digest> {
  const pending = inFlight.get(registry) ?? new Map<string, Promise<Digest>>();
  inFlight.set(registry, pending);
  let p = pending.get(key);
  if (!p) {
    p = run().finally(() => pending.delete(key));
    pending.set(key, p);
  }
  return p;
}

/**
 * Pulls one image into `cache`: the manifest (this host's platform of an index), then every blob
 * Hangar's blob store lacks, each hashed as it streams to a temp file and stored only if it matches
 * its digest and size; the manifest is recorded (and tagged) last, so a half-pulled image is never
 * found. Returns the digest of the platform manifest.
 */
async function pull(
  ref: string,
  repository: string,
  reference: string,
  cache: string,
  url: string,
  host: string,
  opts: ImageSourceOptions,
): Promise<Digest> {
  const credentials = await opts.credentials?.(host);
  const remote = new RemoteRegistry({ host, url, ...(credentials ? { credentials } : {}) });
  let top = await remote.manifest(repository, reference, ref);
  if (INDEX_TYPES.includes(top.mediaType)) {
    const chosen = choosePlatform(JSON.parse(Buffer.from(top.bytes).toString()) as ImageIndex);
    if (!chosen)
      throw new ImageNotFoundError(ref, `image ${ref} has no manifest for linux/${hostArchitecture()}`);
    top = await remote.manifest(repository, chosen.digest, ref);
    if (INDEX_TYPES.includes(top.mediaType)) {
      throw new ImageNotFoundError(
        ref,
        `image ${ref}: the linux/${hostArchitecture()} entry of its index is another index`,
      );
    }
  }
  const manifest = JSON.parse(Buffer.from(top.bytes).toString()) as ImageManifest;
  const blobs = [manifest.config, ...manifest.layers];
  const total = manifest.layers.length;
  let done = 0;
  let bytes = 0;
  const progress = (): void =>
    opts.onProgress?.(
      `pulling ${host}/${repository}:${reference} (${done}/${total} layers, ${Math.round(bytes / 1e6)} MB)`,
    );
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    // A failed blob stops the others from starting new ones: the pull has failed already.
    while (next < blobs.length && !failed) {
      const blob = blobs[next++];
      if (!blob) break;
      try {
        if (!(await opts.registry.blobs.has(blob.digest))) {
          const onLayer = blob !== manifest.config ? opts.onLayerStream : undefined;
          await fetchBlob(remote, repository, blob, ref, opts.registry.blobs, onLayer);
          bytes += blob.size;
        }
      } catch (error) {
        failed = true;
        throw error;
      }
      if (blob !== manifest.config) {
        done++;
        progress();
      }
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: PARALLEL_BLOBS }, worker));
  const rejected = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (rejected) throw rejected.reason;
  // The platform manifest under its digest, then the tag (or the asked digest) pointing at it.
  await opts.registry.putManifest(cache, top.digest, top.bytes, top.mediaType);
  if (!isDigest(reference)) await opts.registry.putManifest(cache, reference, top.bytes, top.mediaType);
  return top.digest;
}

/**
 * Streams a blob from the remote registry into the blob store and, for a layer, to `onLayer` at the
 * same time (the slower reader sets the pace). Its size is checked as it comes and its digest at the
 * end: a blob other than announced is BlobCorruptedError, the store keeps nothing of it and
 * `verified` tells the layer's reader not to use what it made. A reader that fails (a layer that
 * does not unpack) is cut off while the blob is still fetched and stored, so that its error is
 * reported only for bytes that are the announced ones.
 */
async function fetchBlob(
  remote: RemoteRegistry,
  repository: string,
  blob: { digest: Digest; size: number },
  ref: string,
  store: BlobStore,
  onLayer: ImageSourceOptions["onLayerStream"],
): Promise<void> {
  const { digest, size } = blob;
  const body = Readable.fromWeb(
    (await remote.blob(repository, digest, ref)) as NodeReadableStream<Uint8Array>,
  );
  const hasher = new DigestHasher();
  const verified = settleable();
  const checked = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hasher.update(chunk);
      if (hasher.size > size)
        callback(new BlobCorruptedError(ref, digest, `it is longer than the announced ${size} bytes`));
      else callback(null, chunk);
    },
    flush(callback) {
      const actual = hasher.digest();
      const error =
        actual !== digest
          ? new BlobCorruptedError(ref, digest, `its content hashes to ${actual}`)
          : hasher.size !== size
            ? new BlobCorruptedError(ref, digest, `it is ${hasher.size} bytes, not ${size}`)
            : undefined;
      if (error) callback(error);
      else {
        verified.resolve();
        callback();
      }
    },
  });
  // Chunks are read one by one as they came (object mode), not joined into one buffer per read.
  const tee = () =>
    new PassThrough({
      readableObjectMode: true,
      readableHighWaterMark: TEE_CHUNKS,
      writableHighWaterMark: TEE_CHUNKS << 16,
    });
  const toStore = tee();
  const toLayer = onLayer ? tee() : undefined;
  const fail = (error: Error): void => {
    verified.reject(error);
    body.destroy();
    checked.destroy();
    toStore.destroy(error);
    toLayer?.destroy(error);
  };
  // Their readers hear of an error when they read (one may not have started yet).
  for (const tee of [toStore, toLayer]) tee?.on("error", () => {});
  body.on("error", fail);
  checked.on("error", fail);
  body.pipe(checked);
  checked.pipe(toStore);
  if (toLayer) checked.pipe(toLayer);
  const storing = store.putStream(toStore, digest, { checked: true }).catch((error: Error) => {
    fail(error);
    throw error;
  });
  const unpacking = toLayer
    ? Promise.resolve(onLayer?.(digest, { stream: toLayer, verified: verified.promise })).catch(
        (error: unknown) => {
          checked.unpipe(toLayer);
          toLayer.destroy();
          throw error;
        },
      )
    : undefined;
  const [v, ...others] = await Promise.allSettled([verified.promise, storing, unpacking]);
  // The blob's own fault first: a corrupted layer also fails to store and, often, to unpack.
  if (v?.status === "rejected") throw v.reason;
  for (const r of others) if (r.status === "rejected") throw r.reason;
}

/** A promise with its settling functions (Promise.withResolvers, which Node 20 lacks). */
function settleable(): { promise: Promise<void>; resolve(): void; reject(error: Error): void } {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // awaited by fetchBlob and by the layer's reader
  return { promise, resolve, reject };
}
