export type { BuilderOptions } from "./builder.js";
export { Builder, RESTARTED_MESSAGE } from "./builder.js";
export { BuildContextStore } from "./context.js";
export type { ParsedDockerfile } from "./domain/dockerfile.js";
export { parseDockerfile } from "./domain/dockerfile.js";
export {
  BuildError,
  CopySourceError,
  DockerfileError,
  isBuildError,
  RunFailedError,
  UnsupportedInstructionError,
} from "./domain/errors.js";
export type { BuildOutline, PlannedStep, StagePlan } from "./domain/plan.js";
export { outlineBuild, planStage } from "./domain/plan.js";
export type { BuildDeps, BuildHooks, BuildInput, BuildResult, StepReport } from "./image-build.js";
export { buildImage } from "./image-build.js";
export type { CacheEntry, LayerRef } from "./layer-cache.js";
export { DEFAULT_CACHE_BUCKET, LayerCache } from "./layer-cache.js";
export type { BuildNetwork } from "./network/build-network.js";
export { BuildNetworks } from "./network/build-network.js";
export type { BuilderBuckets } from "./platform.js";
export { openBuildDeps } from "./platform.js";
export { BuilderPreflightError, checkBuilderHost } from "./preflight.js";
