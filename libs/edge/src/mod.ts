export { edgeBundleOf, edgeDigest } from "./bundle-code.js";
export {
  type BundledEdgeApp,
  type BundleEdgeAppOptions,
  bundleEdgeApp,
  detectEdgeEntry,
  EDGE_STDLIB_IMPORTS,
  looksLikeEdgeEntry,
} from "./bundler.js";
export * from "./contract.js";
export { httpFetch } from "./http-fetch.js";
export {
  EDGE_IMAGE_MAX_OPS,
  EDGE_IMAGE_MAX_PIXELS,
  EDGE_IMAGE_MAX_SIDE,
  EdgeImageError,
  transformImage,
} from "./image.js";
export { type EdgeFetcher, type EdgeLogLine, MemoryEdgeHost, networkFetch } from "./memory-host.js";
export { assertIsolateFlags, NODE_FLAG } from "./node-flags.js";
export { EdgeRuntime } from "./runtime.js";
