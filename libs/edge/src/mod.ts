export * from "./contract.js";
export { EdgeRuntime } from "./runtime.js";
export { assertIsolateFlags, NODE_FLAG } from "./node-flags.js";
