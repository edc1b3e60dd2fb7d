/** The SubtleCrypto methods the host runs: the prelude's `crypto.subtle` and the bridge share this list. */
export const SUBTLE_OPERATIONS = [
  "digest",
  "importKey",
  "exportKey",
  "generateKey",
  "sign",
  "verify",
  "encrypt",
  "decrypt",
  "deriveBits",
  "deriveKey",
  "wrapKey",
  "unwrapKey",
] as const;
