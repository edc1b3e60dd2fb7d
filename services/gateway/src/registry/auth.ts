import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { RegistryError } from "./errors.js";

const BEARER = /^Bearer\s+(\S+)\s*$/i;
const BASIC = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i;

// Comparing digests keeps the comparison constant-time even when the lengths differ.
const hash = (token: string): Buffer => createHash("sha256").update(token).digest();

/**
 * The /v2 API's auth: the API token as `Bearer <token>`, or as the password of Basic auth (any user
 * name), which is what registry clients send (`skopeo --creds x:<token>`, `docker login`).
 * Anything else is 401 UNAUTHORIZED with a Basic challenge, so clients know to send credentials.
 */
export function registryAuth(token: string): MiddlewareHandler {
  if (token === "") throw new Error("registryAuth needs a non-empty token");
  const expected = hash(token);
  return async (c, next) => {
    const given = presentedToken(c.req.header("authorization"));
    if (given === undefined || !timingSafeEqual(hash(given), expected)) {
      c.header("www-authenticate", 'Basic realm="hangar"');
      const error = new RegistryError(
        "UNAUTHORIZED",
        given === undefined
          ? "authentication required: use Basic auth with the API token as password"
          : "invalid token",
      );
      return c.json(error.toJSON(), 401);
    }
    await next();
  };
}

function presentedToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const bearer = BEARER.exec(header)?.[1];
  if (bearer !== undefined) return bearer;
  const basic = BASIC.exec(header)?.[1];
  if (basic === undefined) return undefined;
  const decoded = Buffer.from(basic, "base64").toString();
  const colon = decoded.indexOf(":");
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}
