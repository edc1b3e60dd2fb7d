import { randomBytes } from "node:crypto";

// Crockford's base32, as ULIDs spell them: no I, L, O, U.
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/**
 * A ULID: 10 characters of millisecond time then 16 of randomness (80 bits). Ids sort by creation
 * time, and fit in a subject token, an object name and an image tag.
 */
export function newUlid(nowMs = Date.now()): string {
  let time = "";
  let t = nowMs;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET.charAt(t % 32) + time;
    t = Math.floor(t / 32);
  }
  let random = "";
  // 256 is a multiple of 32, so masking a byte keeps every character equally likely.
  for (const byte of randomBytes(16)) random += ALPHABET.charAt(byte & 31);
  return time + random;
}
