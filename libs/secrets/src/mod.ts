export {
  openBuildSecrets,
  type SealedBuildSecrets,
  scopeOfBuild,
  sealBuildSecrets,
} from "./build-secrets.js";
export type { WrappedKey } from "./envelope.js";
export {
  decryptSecret,
  digestKey,
  encryptSecret,
  KEY_BYTES,
  MasterKeys,
  masterKeyId,
  newDataKey,
  SecretsCryptoError,
  secretDigest,
} from "./envelope.js";
export type { MasterKeySettings } from "./master-key.js";
export { loadMasterKeys, masterKeysFromConfig, parseMasterKey } from "./master-key.js";
export { isSecretName, MAX_SECRET_VALUE_BYTES, scopeOfApp, scopeOfOrg } from "./names.js";
