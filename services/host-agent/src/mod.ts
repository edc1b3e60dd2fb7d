export type { HostAgentOptions } from "./agent.js";
export { HostAgent } from "./agent.js";
export type { ImagePullerOptions } from "./images.js";
export { ImagePuller } from "./images.js";
export type { ImageSource, PulledImage, RunContext, RunnableConfig, SandboxCapability } from "./run-spec.js";
export { ImageRunError, resolveRun } from "./run-spec.js";
export type { HostDriverMode, HostProbe } from "./sandbox-support.js";
export { netnsSupported, sandboxCapability } from "./sandbox-support.js";
