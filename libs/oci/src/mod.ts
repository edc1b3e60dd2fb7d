export { BASE_LABEL, type BaseImages, platformBaseImages } from "./bases/base-images.js";
export { platformBaseNames } from "./bases/catalog.js";
export { makeNatsServerImage, NATS_IMAGE_DATA, NATS_IMAGE_UID } from "./bases/nats.js";
export { BlobStore, DEFAULT_BLOB_BUCKET, hashFile } from "./blob-store.js";
export { checkDigest, type Digest, DigestHasher, digestOf, isDigest } from "./digest.js";
export {
  BlobCorruptedError,
  BlobNotFoundError,
  DigestMismatchError,
  ImageNotFoundError,
  InvalidReferenceError,
  LayerEntryError,
  LayerTooLargeError,
  ManifestBlobUnknownError,
  ManifestInvalidError,
  OciError,
  RegistryAuthError,
  RemoteRegistryError,
  SystemToolError,
  UnknownUserError,
} from "./errors.js";
export type { RunOptions as RunToolOptions, RunResult as RunToolResult } from "./exec.js";
export { run as runTool } from "./exec.js";
export { type ImageFiles, type ImageFilesOptions, readImageFiles } from "./image-files.js";
export { reachesForeignApp } from "./image-owner.js";
export {
  cacheFilled,
  cacheRepository,
  DOCKER_HUB,
  type ImageSourceOptions,
  imageNotFoundError,
  isUpstreamRef,
  parseUpstreams,
  registryHostOf,
  resolveImage,
  type UpstreamRegistries,
} from "./image-source.js";
export { writeImage } from "./image-writer.js";
export { applyLayer, createLayer, type LayerFile } from "./layer.js";
export { type LayerSource, LayerStore } from "./layer-store.js";
export { exportImageLayout } from "./layout.js";
export {
  choosePlatform,
  type Descriptor,
  type HistoryEntry,
  hostArchitecture,
  IMAGE_MANIFEST_TYPES,
  type ImageConfig,
  type ImageHealthcheck,
  type ImageIndex,
  type ImageManifest,
  type ImageRuntimeConfig,
  INDEX_TYPES,
  MANIFEST_TYPES,
  MediaType,
} from "./media.js";
export { openObjectBucket } from "./object-bucket.js";
export {
  DEFAULT_REGISTRY_HOST,
  formatImageRef,
  type ImageRef,
  isRepositoryName,
  isTag,
  parseImageRef,
} from "./ref.js";
export { DEFAULT_REGISTRY_BUCKET, ImageRegistry, linksBucketOf, type ResolvedImage } from "./registry.js";
export { type AuthChallenge, basicAuthorization, parseWwwAuthenticate } from "./remote/auth.js";
export { DEFAULT_RETRY, isRetryableStatus, type RetryPolicy, retryDelayMs } from "./remote/backoff.js";
export { type RemoteManifest, RemoteRegistry, type RemoteRegistryOptions } from "./remote/client.js";
export {
  credentialsFor,
  type DockerAuthConfig,
  parseDockerAuthConfig,
  REGISTRY_AUTH_SECRET,
  type RegistryCredentials,
  registryCredentials,
  withCredentials,
} from "./remote/credentials.js";
export { layerLowers, mountImageRoot, mountOverlay, overlaySupported, unmountIfMounted } from "./rootfs.js";
export * from "./runtime/mod.js";
export { bwrapPath, resolveUser, type SandboxOptions, sandboxArgv } from "./sandbox.js";
export {
  type LoadedEntry,
  READ_AHEAD,
  readAhead,
  type TreeEntry,
  walkTree,
  walkTreeLoaded,
} from "./tree-walk.js";
