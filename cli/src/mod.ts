export { ApiClient, ApiError, ConnectionError } from "./api.js";
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
  requireNats,
} from "./config.js";
export { type Context, createContext, processContext } from "./context.js";
export { describeError, hintFor } from "./errors.js";
export { resolveImage } from "./image.js";
export { formatLogLine, type LogLine, logSubject, parseLogLine } from "./logs.js";
export { buildCreateMachineRequest, httpService, parseEnvPair, type RunOptions } from "./machine-request.js";
export { buildProgram, runCli, USAGE_EXIT_CODE } from "./program.js";
export { splitShellWords } from "./shell-words.js";
export { ago, formatTable } from "./table.js";
export type * from "./types.js";
export { WaitTimeoutError, waitForState } from "./wait.js";
