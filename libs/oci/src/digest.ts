import { createHash, type Hash } from "node:crypto";
import { DigestMismatchError } from "./errors.js";

/** A content digest as OCI writes it; Hangar only makes and accepts sha256. */
export type Digest = `sha256:${string}`;

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** True for `sha256:` followed by 64 lowercase hex digits. */
export function isDigest(s: string): s is Digest {
  return DIGEST.test(s);
}

/** The sha256 digest of bytes (a string is hashed as UTF-8). */
export function digestOf(bytes: Uint8Array | string): Digest {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Hashes content as it streams by and counts its bytes. */
export class DigestHasher {
  readonly #hash: Hash = createHash("sha256");
  size = 0;

  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.size += chunk.byteLength;
  }

  /** The digest of everything seen; call once. */
  digest(): Digest {
    return `sha256:${this.#hash.digest("hex")}`;
  }
}

/** Throws DigestMismatchError unless `actual` is `expected` (or nothing was expected). */
export function checkDigest(actual: Digest, expected: Digest | undefined): void {
  if (expected !== undefined && actual !== expected) throw new DigestMismatchError(expected, actual);
}

/** The 64 hex digits of a digest, as file names in blob folders use them. */
export function digestHex(d: Digest): string {
  return d.slice("sha256:".length);
}
