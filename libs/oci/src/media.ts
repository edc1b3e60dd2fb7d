import type { Digest } from "./digest.js";

/** The media types Hangar writes (OCI) and, for manifests, the Docker v2 ones it also reads. */
export const MediaType = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayerTarGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerTar: "application/vnd.oci.image.layer.v1.tar",
  ociLayerTarZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerTarGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

/** Manifest media types a single-platform image may come as. */
export const IMAGE_MANIFEST_TYPES: readonly string[] = [MediaType.ociManifest, MediaType.dockerManifest];
/** Media types of multi-platform indexes. */
export const INDEX_TYPES: readonly string[] = [MediaType.ociIndex, MediaType.dockerManifestList];
/** Every manifest media type the registry accepts. */
export const MANIFEST_TYPES: readonly string[] = [...IMAGE_MANIFEST_TYPES, ...INDEX_TYPES];

/** Points at a blob by digest, as manifests and indexes do. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
  urls?: string[];
}

/** An image manifest (OCI, or Docker v2 schema 2, which has the same shape). */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** An image index (OCI) or manifest list (Docker). */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The runtime part of an image config. */
export interface ImageRuntimeConfig {
  Env?: string[];
  Cmd?: string[];
  Entrypoint?: string[];
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Volumes?: Record<string, Record<string, never>>;
  /** Docker's health check: durations in nanoseconds; Test ["NONE"] turns an inherited one off. */
  Healthcheck?: ImageHealthcheck;
  /** Instructions a child image runs right after its FROM (Dockerfile ONBUILD). */
  OnBuild?: string[];
  /** The shell of shell-form commands (Dockerfile SHELL); ["/bin/sh", "-c"] when unset. */
  Shell?: string[];
}

/** The Healthcheck of an image config, in Docker's shape. */
export interface ImageHealthcheck {
  Test: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** One step of an image's history. */
export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** The OCI image config. */
export interface ImageConfig {
  created?: string;
  architecture: string;
  os: string;
  /** Who made the image (Dockerfile MAINTAINER). */
  author?: string;
  config: ImageRuntimeConfig;
  rootfs: { type: "layers"; diff_ids: Digest[] };
  history?: HistoryEntry[];
}

/**
 * The manifest of an index for linux/`arch` (this host's by default); an index of one entry without
 * a platform is taken as it is. Undefined when no entry fits.
 */
export function choosePlatform(index: ImageIndex, arch: string = hostArchitecture()): Descriptor | undefined {
  return (
    index.manifests.find((m) => m.platform?.os === "linux" && m.platform.architecture === arch) ??
    (index.manifests.length === 1 && index.manifests[0]?.platform === undefined
      ? index.manifests[0]
      : undefined)
  );
}

/** The OCI architecture name of this host (`amd64`, `arm64`, ...). */
export function hostArchitecture(): string {
  const map: Record<string, string> = {
    x64: "amd64",
    arm64: "arm64",
    arm: "arm",
    ia32: "386",
    ppc64: "ppc64le",
    s390x: "s390x",
  };
  return map[process.arch] ?? process.arch;
}
