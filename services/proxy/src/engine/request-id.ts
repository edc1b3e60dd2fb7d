import { randomFillSync } from "node:crypto";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ULID_LENGTH = 26;
const TIME_CHARS = 10;

// Random bytes are drawn in bulk so an id costs no system call; `out` is reused for the encoding.
const entropy = Buffer.allocUnsafe(4096);
let used = entropy.length;
const out = Buffer.allocUnsafe(ULID_LENGTH);

/**
 * A ULID: 48 bits of milliseconds and 80 random bits in Crockford base32, so ids sort by time.
 * Fly.io's request ids have the same shape.
 */
export function ulid(now: number = Date.now()): string {
  let t = now;
  for (let i = TIME_CHARS - 1; i >= 0; i--) {
    out[i] = CROCKFORD.charCodeAt(t % 32);
    t = Math.floor(t / 32);
  }
  if (used + 10 > entropy.length) {
    randomFillSync(entropy);
    used = 0;
  }
  // 80 bits = 16 groups of 5: take them from two 40-bit halves.
  for (let half = 0; half < 2; half++) {
    let bits = 0;
    for (let k = 0; k < 5; k++) bits = bits * 256 + (entropy[used++] as number);
    for (let c = 7; c >= 0; c--) {
      out[TIME_CHARS + half * 8 + c] = CROCKFORD.charCodeAt(bits % 32);
      bits = Math.floor(bits / 32);
    }
  }
  return out.toString("latin1", 0, ULID_LENGTH);
}
