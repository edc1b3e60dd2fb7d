export { registryAuth } from "./auth.js";
export {
  REGISTRY_ERROR_STATUS,
  RegistryError,
  type RegistryErrorBody,
  type RegistryErrorCode,
} from "./errors.js";
export { type RegistryRoutesOptions, registryRoutes } from "./router.js";
export type { RegistryStore } from "./store.js";
export { UploadSessions } from "./upload-sessions.js";
