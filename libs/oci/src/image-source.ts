import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { baseSpecOf, platformBaseNames } from "./bases/catalog.js";
import type { BlobStore } from "./blob-store.js";
import { type Digest, DigestHasher, isDigest } from "./digest.js";
import { BlobCorruptedError, ImageNotFoundError, InvalidReferenceError } from "./errors.js";
import type { LayerSource } from "./layer-store.js";
import {
  choosePlatform,
  hostArchitecture,
  type ImageConfig,
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
  /**
   * With `onLayerStream`: each pulled layer is spooled to a temp file here instead of streamed into
   * the blob store at once, and the pull returns as soon as every layer is unpacked and verified. The
   * cache fill (the layers into the blob store, then the manifest and tag) goes on after it, so a
   * machine starts without waiting for it (`cacheFilled` waits for it). Unset: the layers are stored
   * as they arrive and the pull returns once the image is recorded.
   */
  spoolDir?: string;
  /** Told of a cache fill that failed after its pull returned: the image still runs here, and the next pull fetches it again. */
  onCacheFillError?: (error: unknown) => void;
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
    return pullOnce(opts.registry, `${cache}@${reference}`, () =>
      pull(ref, parsed.repository, reference, cache, url, host, opts),
    );
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

/** A pull's image, and its cache fill (settled at once unless the layers were spooled). */
interface Pulled {
  image: ResolvedImage;
  filled: Promise<void>;
}

// Concurrent pulls of one image share one download (per registry instance), until its cache fill ends:
// a resolve while the fill goes on gets the pulled image, not a second download.
const inFlight = new WeakMap<ImageRegistry, Map<string, Promise<Pulled>>>();

function pullOnce(registry: ImageRegistry, key: string, run: () => Promise<Pulled>): Promise<ResolvedImage> {
  const pending = inFlight.get(registry) ?? new Map<string, Promise<Pulled>>();
  inFlight.set(registry, pending);
  let p = pending.get(key);
  if (!p) {
    const started = run();
    p = started;
    const forget = () => {
      pending.delete(key);
    };
    // A failed fill is reported by the pull (onCacheFillError); here it only ends the sharing.
    started.then((pulled) => pulled.filled.then(forget, forget), forget);
    pending.set(key, p);
  }
  return p.then((pulled) => pulled.image);
}

/** Resolves once every cache fill of `registry`'s pulls under way now has ended (filled or failed). */
export async function cacheFilled(registry: ImageRegistry): Promise<void> {
  const pending = [...(inFlight.get(registry)?.values() ?? [])];
  await Promise.allSettled(pending.map((p) => p.then((pulled) => pulled.filled)));
}

/**
 * Pulls one image into `cache`: the manifest (this host's platform of an index), then every blob
 * Hangar's blob store lacks, each hashed as it streams and stored only if it matches its digest and
 * size; the manifest is recorded (and tagged) last, so a half-pulled image is never found. With
 * `spoolDir` (and `onLayerStream`), the layers are spooled and stored after the pull returns, the
 * manifest recorded once they are (`filled`).
 */
async function pull(
  ref: string,
  repository: string,
  reference: string,
  cache: string,
  url: string,
  host: string,
  opts: ImageSourceOptions,
): Promise<Pulled> {
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
  const spool =
    opts.onLayerStream !== undefined && opts.spoolDir !== undefined
      ? await mkdir(opts.spoolDir, { recursive: true, mode: 0o700 }).then(() =>
          mkdtemp(join(opts.spoolDir as string, "pull-")),
        )
      : undefined;
  /** Layers spooled, to be stored after the pull. */
  const spooled: Array<{ digest: Digest; file: string }> = [];
  const worker = async (): Promise<void> => {
    // A failed blob stops the others from starting new ones: the pull has failed already.
    while (next < blobs.length && !failed) {
      const blob = blobs[next++];
      if (!blob) break;
      try {
        if (!(await opts.registry.blobs.has(blob.digest))) {
          const onLayer = blob !== manifest.config ? opts.onLayerStream : undefined;
          const file = onLayer && spool ? join(spool, blob.digest.slice("sha256:".length)) : undefined;
          await fetchBlob(remote, repository, blob, ref, file ?? opts.registry.blobs, onLayer);
          if (file) spooled.push({ digest: blob.digest, file });
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
  if (rejected) {
    if (spool) await rm(spool, { recursive: true, force: true });
    throw rejected.reason;
  }
  const image: ResolvedImage = {
    repository: cache,
    digest: top.digest,
    manifest,
    config: JSON.parse(
      Buffer.from(await opts.registry.blobs.getBytes(manifest.config.digest)).toString(),
    ) as ImageConfig,
    configDigest: manifest.config.digest,
  };
  // The platform manifest under its digest, then the tag (or the asked digest) pointing at it.
  const record = async (): Promise<void> => {
    await opts.registry.putManifest(cache, top.digest, top.bytes, top.mediaType);
    if (!isDigest(reference)) await opts.registry.putManifest(cache, reference, top.bytes, top.mediaType);
  };
  if (!spool) {
    await record();
    return { image, filled: Promise.resolve() };
  }
  // Verified and unpacked already: the layers go into the blob store (hashed again as they are read
  // back from disk), then the image is recorded, while the machine that asked for it starts.
  const filled = (async () => {
    try {
      for (const { digest, file } of spooled) await opts.registry.blobs.putFile(file, digest);
      await record();
    } finally {
      await rm(spool, { recursive: true, force: true });
    }
  })();
  filled.catch((error: unknown) => opts.onCacheFillError?.(error));
  return { image, filled };
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
  /** The blob store, or a file to spool the blob to (which is removed when the blob is not the announced one). */
  store: BlobStore | string,
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
  const storing = (
    typeof store === "string"
      ? pipeline(toStore, createWriteStream(store)).catch(async (error: Error) => {
          await rm(store, { force: true });
          throw error;
        })
      : store.putStream(toStore, digest, { checked: true })
  ).catch((error: Error) => {
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
