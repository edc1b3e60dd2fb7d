export { edgeBundleOf, edgeDigest } from "./bundle-code.js";
export * from "./contract.js";
export { type EdgeFetcher, type EdgeLogLine, MemoryEdgeHost, networkFetch } from "./memory-host.js";
export { assertIsolateFlags, NODE_FLAG } from "./node-flags.js";
export { EdgeRuntime } from "./runtime.js";
