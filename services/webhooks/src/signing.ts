import { createHmac, randomBytes } from "node:crypto";

/** The prefix of a webhook's signing secret (`whsec_` and 32 random bytes, base64url). */
export const SECRET_PREFIX = "whsec_";

/** A fresh signing secret. */
export function newSigningSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString("base64url")}`;
}

/**
 * The `X-Hangar-Signature` header of a delivery: `t=<unix seconds>,v1=<hex HMAC-SHA256>`, the HMAC
 * keyed by the whole secret string (UTF-8) over `<t>.<raw body>`, so a receiver can refuse an old
 * timestamp and a changed timestamp breaks the signature (docs/webhooks.md).
 */
export function signatureHeader(secret: string, body: string, unixSeconds: number): string {
  const v1 = createHmac("sha256", secret).update(`${unixSeconds}.${body}`, "utf8").digest("hex");
  return `t=${unixSeconds},v1=${v1}`;
}
