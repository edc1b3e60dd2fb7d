import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from "node:crypto";

/*
 * Envelope encryption of secrets. Each app (and each org, for org secrets) has a random data key;
 * the data key is stored wrapped (AES-256-GCM) by a master key that never enters the streams, and
 * names the master key by a short digest so a rotation can tell which data keys still need a rewrap.
 * Values are encrypted by the data key with a random 96-bit nonce, and the scope and the secret's
 * name are the associated data, so a ciphertext moved to another name or app fails to decrypt.
 * Digests are HMACs keyed by a key derived from the data key: the same value digests differently in
 * each app, and a short value cannot be found by hashing guesses without the data key.
 */

/** Bytes of a master key and of a data key (AES-256). */
export const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** First byte of every sealed box: the layout below (version, nonce, ciphertext, tag). */
const FORMAT = 1;

/** A decryption that failed: an unknown master key, a wrong key, or tampered or moved ciphertext. */
export class SecretsCryptoError extends Error {
  override readonly name = "SecretsCryptoError";
}

/** A data key as stored: sealed by the master key `keyId`. */
export interface WrappedKey {
  keyId: string;
  wrapped: Uint8Array;
}

/** The short digest that names a master key in events (never the key itself). */
export function masterKeyId(key: Uint8Array): string {
  return createHash("sha256").update("hangar-master-key\0").update(key).digest("hex").slice(0, 16);
}

/** A fresh random data key. */
export function newDataKey(): Uint8Array {
  return randomBytes(KEY_BYTES);
}

function seal(key: Uint8Array, aad: string, plain: Uint8Array): Uint8Array {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([Buffer.of(FORMAT), nonce, body, cipher.getAuthTag()]);
}

function open(key: Uint8Array, aad: string, box: Uint8Array): Buffer {
  if (box.length < 1 + NONCE_BYTES + TAG_BYTES || box[0] !== FORMAT) {
    throw new SecretsCryptoError("not a sealed secret (bad length or format)");
  }
  const buf = Buffer.from(box.buffer, box.byteOffset, box.byteLength);
  const decipher = createDecipheriv("aes-256-gcm", key, buf.subarray(1, 1 + NONCE_BYTES));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
  try {
    return Buffer.concat([
      decipher.update(buf.subarray(1 + NONCE_BYTES, buf.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch (cause) {
    throw new SecretsCryptoError("secret does not decrypt: wrong key, or ciphertext moved or changed", {
      cause,
    });
  }
}

const dataKeyAad = (scope: string) => `hangar-data-key\0${scope}`;
const valueAad = (scope: string, name: string) => `hangar-secret\0${scope}\0${name}`;

/**
 * The master key and the previous ones still accepted while data keys are rewrapped. New data keys
 * are always wrapped by the current key.
 */
export class MasterKeys {
  readonly currentId: string;
  readonly #keys = new Map<string, Uint8Array>();

  constructor(current: Uint8Array, previous: readonly Uint8Array[] = []) {
    for (const key of [current, ...previous]) {
      if (key.length !== KEY_BYTES) throw new SecretsCryptoError(`a master key must be ${KEY_BYTES} bytes`);
      this.#keys.set(masterKeyId(key), key);
    }
    this.currentId = masterKeyId(current);
  }

  /** Seals a data key of `scope` ("app:<name>" or "org:<slug>") under the current master key. */
  wrap(dataKey: Uint8Array, scope: string): WrappedKey {
    return { keyId: this.currentId, wrapped: seal(this.#key(this.currentId), dataKeyAad(scope), dataKey) };
  }

  /** Opens a data key of `scope`; throws SecretsCryptoError for an unknown master key or a bad seal. */
  unwrap(key: WrappedKey, scope: string): Uint8Array {
    return open(this.#key(key.keyId), dataKeyAad(scope), key.wrapped);
  }

  /** Whether a data key is sealed by the current master key (else it needs a rewrap). */
  isCurrent(key: WrappedKey): boolean {
    return key.keyId === this.currentId;
  }

  /** The same data key sealed by the current master key: the values it encrypts stay as they are. */
  rewrap(key: WrappedKey, scope: string): WrappedKey {
    return this.wrap(this.unwrap(key, scope), scope);
  }

  #key(id: string): Uint8Array {
    const key = this.#keys.get(id);
    if (!key) throw new SecretsCryptoError(`data key is sealed by master key ${id}, which is not configured`);
    return key;
  }
}

/** Encrypts one secret's value with its scope's data key; the scope and name are bound to it. */
export function encryptSecret(dataKey: Uint8Array, scope: string, name: string, value: string): Uint8Array {
  return seal(dataKey, valueAad(scope, name), Buffer.from(value, "utf8"));
}

/** Decrypts one secret's value; throws SecretsCryptoError when the key, scope or name do not match. */
export function decryptSecret(
  dataKey: Uint8Array,
  scope: string,
  name: string,
  ciphertext: Uint8Array,
): string {
  return open(dataKey, valueAad(scope, name), ciphertext).toString("utf8");
}

/** The key a scope's digests are made with, derived from its data key (HKDF-SHA256). */
export function digestKey(dataKey: Uint8Array, scope: string): Uint8Array {
  return new Uint8Array(
    hkdfSync("sha256", dataKey, Buffer.alloc(0), `hangar-secret-digest\0${scope}`, KEY_BYTES),
  );
}

/** A secret value's digest as `secrets list` shows it: HMAC-SHA256 under the scope's digest key, 32 hex digits. */
export function secretDigest(digestKeyBytes: Uint8Array, value: string): string {
  return createHmac("sha256", digestKeyBytes).update(value, "utf8").digest("hex").slice(0, 32);
}
