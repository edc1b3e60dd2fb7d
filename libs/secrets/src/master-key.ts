import { readFileSync } from "node:fs";
import { KEY_BYTES, MasterKeys, SecretsCryptoError } from "./envelope.js";

/** The settings a master key comes from (HANGAR_SECRETS_KEY, _KEY_FILE, _PREVIOUS_KEYS). */
export interface MasterKeySettings {
  key?: string | undefined;
  keyFile?: string | undefined;
  previous?: readonly string[] | undefined;
}

/** A base64 master key, which must be exactly 32 bytes. */
export function parseMasterKey(base64: string, what = "HANGAR_SECRETS_KEY"): Uint8Array {
  const text = base64.trim();
  const key = Buffer.from(text, "base64");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || key.length !== KEY_BYTES) {
    throw new SecretsCryptoError(
      `${what} must be ${KEY_BYTES} random bytes in base64 (openssl rand -base64 32)`,
    );
  }
  return new Uint8Array(key);
}

/**
 * The platform's master keys from its settings: the key itself or a file holding it (base64), and
 * the previous keys still accepted; undefined when neither key nor file is set (secrets are off).
 */
export function loadMasterKeys(settings: MasterKeySettings): MasterKeys | undefined {
  if (settings.key && settings.keyFile) {
    throw new SecretsCryptoError("set HANGAR_SECRETS_KEY or HANGAR_SECRETS_KEY_FILE, not both");
  }
  const text = settings.key ?? (settings.keyFile ? readFileSync(settings.keyFile, "utf8") : undefined);
  if (text === undefined) return undefined;
  const what = settings.key ? "HANGAR_SECRETS_KEY" : `the key file ${settings.keyFile}`;
  const previous = (settings.previous ?? []).map((k) => parseMasterKey(k, "HANGAR_SECRETS_PREVIOUS_KEYS"));
  return new MasterKeys(parseMasterKey(text, what), previous);
}

/** The master keys a service's settings name (HANGAR_SECRETS_KEY, _KEY_FILE, _PREVIOUS_KEYS); see loadMasterKeys. */
export function masterKeysFromConfig(config: {
  HANGAR_SECRETS_KEY?: string | undefined;
  HANGAR_SECRETS_KEY_FILE?: string | undefined;
  HANGAR_SECRETS_PREVIOUS_KEYS?: readonly string[] | undefined;
}): MasterKeys | undefined {
  return loadMasterKeys({
    key: config.HANGAR_SECRETS_KEY,
    keyFile: config.HANGAR_SECRETS_KEY_FILE,
    previous: config.HANGAR_SECRETS_PREVIOUS_KEYS,
  });
}
