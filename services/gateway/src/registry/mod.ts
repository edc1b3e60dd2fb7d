export { registryAuth } from "./auth.js";
export {
  REGISTRY_ERROR_STATUS,
  RegistryError,
  type RegistryErrorBody,
  type RegistryErrorCode,
} from "./errors.js";
export { type BlobQuota, type BlobUsage, KvBlobUsage } from "./quota.js";
export { type RegistryRoutesOptions, registryRoutes } from "./router.js";
export type { RegistryStore } from "./store.js";
export { type UploadSessionOptions, UploadSessions } from "./upload-sessions.js";
