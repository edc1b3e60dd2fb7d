export { availableBaseImages, copyHostExecutables, ensureBaseImage, NODE_VERSION_LABEL } from "./bases.js";
export { BlobStore, DEFAULT_BLOB_BUCKET, hashFile } from "./blob-store.js";
export { checkDigest, type Digest, DigestHasher, digestOf, isDigest } from "./digest.js";
export {
  BlobNotFoundError,
  DigestMismatchError,
  ImageNotFoundError,
  InvalidReferenceError,
  LayerEntryError,
  LayerTooLargeError,
  ManifestBlobUnknownError,
  ManifestInvalidError,
  OciError,
  SystemToolError,
  UnknownBaseImageError,
  UnknownUserError,
} from "./errors.js";
export { run as runTool } from "./exec.js";
export { reachesForeignApp } from "./image-owner.js";
export { writeImage } from "./image-writer.js";
export { applyLayer, createLayer, type LayerFile } from "./layer.js";
export { LayerStore } from "./layer-store.js";
export { exportImageLayout } from "./layout.js";
export {
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
export { mountOverlay, overlaySupported, unmountIfMounted } from "./rootfs.js";
export * from "./runtime/mod.js";
export { bwrapPath, resolveUser, type SandboxOptions, sandboxArgv } from "./sandbox.js";
