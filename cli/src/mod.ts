export { splitShellWords } from "@hangar/config";
export { ApiClient, ApiError, ConnectionError, type CreateBuildOptions, parseNdjson } from "./api.js";
export { APP_CONFIG_FILES, type LoadedAppConfig, loadAppConfig, resolveAppName } from "./app-config.js";
export {
  formatBytes,
  listContext,
  type PackedContext,
  type PackOptions,
  packContext,
} from "./build-context.js";
export { type BuildOutcome, followBuild, formatFailure, formatStep } from "./build-log.js";
export { CliError } from "./cli-error.js";
export {
  type ApiConfig,
  appUrl,
  ConfigError,
  DEFAULT_API_URL,
  DEFAULT_PROXY_URL,
  type HangarConfig,
  loadConfig,
  requireApi,
} from "./config.js";
export { type Context, createContext, processContext } from "./context.js";
export { describeError, hintFor } from "./errors.js";
export { resolveImage } from "./image.js";
export {
  appNameFrom,
  appPort,
  detectProject,
  hangarToml,
  NODE_DOCKERIGNORE,
  nodeDockerfile,
  type Project,
} from "./launch.js";
export { formatLogEntry, type LogEntry } from "./logs.js";
export { buildCreateMachineRequest, httpService, parseEnvPair, type RunOptions } from "./machine-request.js";
export { buildProgram, runCli, USAGE_EXIT_CODE } from "./program.js";
export { ago, formatTable } from "./table.js";
export type * from "./types.js";
export { WaitTimeoutError, waitForState } from "./wait.js";
