import { patiently } from "@hangar/eventstore";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { BlobStore } from "./blob-store.js";
import { type Digest, digestHex, digestOf, isDigest } from "./digest.js";
import {
  ImageNotFoundError,
  InvalidReferenceError,
  ManifestBlobUnknownError,
  ManifestInvalidError,
} from "./errors.js";
import {
  choosePlatform,
  type Descriptor,
  hostArchitecture,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  INDEX_TYPES,
  MANIFEST_TYPES,
} from "./media.js";
import { isRepositoryName, isTag, parseImageRef } from "./ref.js";

/** The default KV bucket of tags and manifest records. */
export const DEFAULT_REGISTRY_BUCKET = "hangar-registry";

/** The KV bucket of a registry bucket's blob links: `<registry bucket>-links`, `hangar-registry-links` by default. */
export const linksBucketOf = (registryBucket: string): string => `${registryBucket}-links`;

/** An image found in the registry, with its manifest and config read. */
export interface ResolvedImage {
  repository: string;
  /** Digest of the image manifest (for a multi-platform index, of this platform's manifest). */
  digest: Digest;
  manifest: ImageManifest;
  config: ImageConfig;
  configDigest: Digest;
}

interface ManifestRecord {
  mediaType: string;
}

interface TagRecord {
  digest: Digest;
}

// KV keys allow only [-/_=.a-zA-Z0-9] with dots splitting tokens: repository names (which hold
// "/" and ".") and tags (which hold ".") go in as base64url tokens.
const token = (s: string): string => Buffer.from(s).toString("base64url");
const tagKey = (repo: string, tag: string): string => `tag.${token(repo)}.${token(tag)}`;
const manifestKey = (repo: string, d: Digest): string => `manifest.${token(repo)}.${digestHex(d)}`;
const linkKey = (repo: string, d: Digest): string => `link.${token(repo)}.${digestHex(d)}`;

/**
 * Hangar's image registry: manifests are blobs in the BlobStore, and a KV bucket records which
 * repository holds which manifest (with its media type) and where each tag points. The BlobStore
 * is shared by every repository, so a second bucket links each blob to the repositories it was
 * pushed to or referenced from (as Docker Distribution does): only a linked blob may be read or
 * mounted through a repository, so knowing another tenant's digest gets nobody its bytes.
 */
export class ImageRegistry {
  private constructor(
    readonly blobs: BlobStore,
    private readonly kv: KV,
    private readonly links: KV,
  ) {}

  /** Opens (creating if needed) the registry's KV buckets: records and tags, and blob links. */
  static async open(
    nc: NatsConnection,
    blobs: BlobStore,
    opts: { bucket?: string; replicas?: number } = {},
  ): Promise<ImageRegistry> {
    const bucket = opts.bucket ?? DEFAULT_REGISTRY_BUCKET;
    const kvm = new Kvm(nc);
    const settings = { history: 1, replicas: opts.replicas ?? 1 };
    const kv = await patiently(() => kvm.create(bucket, settings));
    const links = await patiently(() => kvm.create(linksBucketOf(bucket), settings));
    return new ImageRegistry(blobs, kv, links);
  }

  /** Links a stored blob to `repository`, so it may be read and mounted from there. */
  async linkBlob(repository: string, digest: Digest): Promise<void> {
    checkRepository(repository);
    await this.links.put(linkKey(repository, digest), "1");
  }

  /**
   * True if `digest` is a blob of `repository`: linked to it, or a manifest stored in it. A
   * repository pushed before links existed has none; there a blob some manifest of the repository
   * references counts too, and is linked on the way so the next look is one KV get.
   */
  async hasBlob(repository: string, digest: Digest): Promise<boolean> {
    if (!isRepositoryName(repository) || !isDigest(digest)) return false;
    if ((await this.links.get(linkKey(repository, digest)))?.operation === "PUT") return true;
    if (await this.hasManifest(repository, digest)) return true;
    if (!(await this.referencedByManifest(repository, digest))) return false;
    await this.linkBlob(repository, digest);
    return true;
  }

  /**
   * Stores a manifest in `repository` under a tag or its digest and returns its digest, and links
   * its config and layers (or, for an index, its manifests) to the repository. Refuses a manifest
   * whose config, layers or (for an index) manifests are not stored. With `linkedBlobsOnly` (a
   * tenant's push over /v2) config and layers must already be blobs of the repository, or a manifest
   * naming another tenant's digest would link that tenant's blob here; the builder, which stored
   * the blobs itself, leaves it off.
   */
  async putManifest(
    repository: string,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    opts: { linkedBlobsOnly?: boolean } = {},
  ): Promise<Digest> {
    checkRepository(repository);
    const digest = digestOf(bytes);
    if (isDigest(reference)) {
      if (reference !== digest)
        throw new ManifestInvalidError(`manifest content hashes to ${digest}, not ${reference}`);
    } else if (!isTag(reference)) {
      throw new InvalidReferenceError(`"${reference}" is neither a tag nor a sha256 digest`);
    }
    const type = mediaType.split(";")[0]?.trim() ?? "";
    const parsed = parseManifest(bytes, type);
    const referenced = referencedDigests(parsed);
    if ("manifests" in parsed) {
      for (const m of referenced) {
        if (!(await this.hasManifest(repository, m))) throw new ManifestBlobUnknownError(m);
      }
    } else {
      for (const blob of referenced) {
        const known = opts.linkedBlobsOnly
          ? await this.hasBlob(repository, blob)
          : await this.blobs.has(blob);
        if (!known) throw new ManifestBlobUnknownError(blob);
      }
    }
    // Linked before the manifest is recorded: a manifest never names a blob its repository lacks.
    for (const d of referenced) await this.linkBlob(repository, d);
    await this.blobs.putBytes(bytes, digest);
    await this.kv.put(
      manifestKey(repository, digest),
      JSON.stringify({ mediaType: type } satisfies ManifestRecord),
    );
    if (!isDigest(reference)) {
      await this.kv.put(tagKey(repository, reference), JSON.stringify({ digest } satisfies TagRecord));
    }
    return digest;
  }

  /** A manifest of `repository` by tag or digest, or undefined. */
  async getManifest(
    repository: string,
    reference: string,
  ): Promise<{ digest: Digest; mediaType: string; bytes: Uint8Array } | undefined> {
    if (!isRepositoryName(repository)) return undefined;
    let digest: Digest;
    if (isDigest(reference)) digest = reference;
    else if (isTag(reference)) {
      const tag = await this.read<TagRecord>(tagKey(repository, reference));
      if (tag === undefined) return undefined;
      digest = tag.digest;
    } else return undefined;
    const record = await this.read<ManifestRecord>(manifestKey(repository, digest));
    if (record === undefined) return undefined;
    return { digest, mediaType: record.mediaType, bytes: await this.blobs.getBytes(digest) };
  }

  /** The tags of a repository, sorted. */
  async tags(repository: string): Promise<string[]> {
    if (!isRepositoryName(repository)) return [];
    const prefix = `tag.${token(repository)}.`;
    const tags: string[] = [];
    for await (const key of await this.kv.keys(`${prefix}*`)) {
      tags.push(Buffer.from(key.slice(prefix.length), "base64url").toString());
    }
    return tags.sort();
  }

  /**
   * Finds an image by reference (tag `latest` if it names none), whatever registry host it names.
   * An index resolves to this host's platform. Throws ImageNotFoundError saying how to get it.
   */
  async resolve(ref: string): Promise<ResolvedImage> {
    const parsed = parseImageRef(ref);
    const reference = parsed.digest ?? parsed.tag ?? "latest";
    // "hello:v1" is library/hello to Docker, but Hangar's own images are pushed as plain "hello".
    const candidates = [parsed.repository];
    if (parsed.registry === undefined && parsed.repository.startsWith("library/")) {
      candidates.push(parsed.repository.slice("library/".length));
    }
    for (const repository of candidates) {
      const found = await this.resolveIn(repository, reference, ref);
      if (found !== undefined) return found;
    }
    throw new ImageNotFoundError(ref);
  }

  /**
   * The image `reference` (tag or digest) of `repository` names, or undefined if it holds none; an
   * index resolves to this host's platform (ImageNotFoundError naming `ref` when it has none).
   */
  async resolveIn(repository: string, reference: string, ref: string): Promise<ResolvedImage | undefined> {
    const found = await this.getManifest(repository, reference);
    if (found === undefined) return undefined;
    let { digest, mediaType, bytes } = found;
    if (INDEX_TYPES.includes(mediaType)) {
      const chosen = choosePlatform(JSON.parse(Buffer.from(bytes).toString()) as ImageIndex);
      const platformManifest = chosen && (await this.getManifest(repository, chosen.digest));
      if (!platformManifest) {
        throw new ImageNotFoundError(ref, `image ${ref} has no manifest for linux/${hostArchitecture()}`);
      }
      ({ digest, mediaType, bytes } = platformManifest);
    }
    const manifest = JSON.parse(Buffer.from(bytes).toString()) as ImageManifest;
    const config = JSON.parse(
      Buffer.from(await this.blobs.getBytes(manifest.config.digest)).toString(),
    ) as ImageConfig;
    return { repository, digest, manifest, config, configDigest: manifest.config.digest };
  }

  /** True if a manifest stored in `repository` names `digest` as its config, a layer or a child manifest. */
  private async referencedByManifest(repository: string, digest: Digest): Promise<boolean> {
    const prefix = `manifest.${token(repository)}.`;
    for await (const key of await this.kv.keys(`${prefix}*`)) {
      const record = await this.read<ManifestRecord>(key);
      if (record === undefined) continue;
      const manifestDigest = `sha256:${key.slice(prefix.length)}` as Digest;
      let parsed: ImageManifest | ImageIndex;
      try {
        parsed = parseManifest(await this.blobs.getBytes(manifestDigest), record.mediaType);
      } catch {
        // A record whose manifest is gone or unreadable vouches for nothing.
        continue;
      }
      if (referencedDigests(parsed).includes(digest)) return true;
    }
    return false;
  }

  private async hasManifest(repository: string, digest: Digest): Promise<boolean> {
    return (await this.read<ManifestRecord>(manifestKey(repository, digest))) !== undefined;
  }

  private async read<T>(key: string): Promise<T | undefined> {
    const entry = await this.kv.get(key);
    return entry === null || entry.operation !== "PUT" ? undefined : entry.json<T>();
  }
}

function checkRepository(repository: string): void {
  if (!isRepositoryName(repository)) {
    throw new InvalidReferenceError(
      `"${repository}" is not a valid repository name (lowercase letters, digits, ._- and /)`,
    );
  }
}

/** Parses and sanity-checks a manifest of a known media type. */
function parseManifest(bytes: Uint8Array, mediaType: string): ImageManifest | ImageIndex {
  if (!MANIFEST_TYPES.includes(mediaType)) {
    throw new ManifestInvalidError(
      `manifest media type "${mediaType}" is not one of ${MANIFEST_TYPES.join(", ")}`,
    );
  }
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString()) as Record<string, unknown>;
  } catch (error) {
    throw new ManifestInvalidError("manifest is not valid JSON", { cause: error });
  }
  if (doc.schemaVersion !== 2) throw new ManifestInvalidError("manifest schemaVersion must be 2");
  if (doc.mediaType !== undefined && doc.mediaType !== mediaType) {
    throw new ManifestInvalidError(
      `manifest says mediaType ${String(doc.mediaType)} but was sent as ${mediaType}`,
    );
  }
  const validDescriptor = (d: unknown): d is Descriptor =>
    typeof d === "object" &&
    d !== null &&
    isDigest(String((d as Descriptor).digest)) &&
    Number.isInteger((d as Descriptor).size);
  if (INDEX_TYPES.includes(mediaType)) {
    if (!Array.isArray(doc.manifests) || !doc.manifests.every(validDescriptor)) {
      throw new ManifestInvalidError("index needs a manifests array of descriptors");
    }
    return doc as unknown as ImageIndex;
  }
  if (!validDescriptor(doc.config) || !Array.isArray(doc.layers) || !doc.layers.every(validDescriptor)) {
    throw new ManifestInvalidError(
      "image manifest needs a config descriptor and a layers array of descriptors",
    );
  }
  return doc as unknown as ImageManifest;
}

/** The blobs a manifest names: config and layers, or an index's manifests. */
function referencedDigests(parsed: ImageManifest | ImageIndex): Digest[] {
  if ("manifests" in parsed) return parsed.manifests.map((m) => m.digest);
  return [parsed.config, ...parsed.layers].map((b) => b.digest);
}
