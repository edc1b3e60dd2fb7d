import { type Principal, TokenError, verifyToken } from "@hangar/auth";
import type { MiddlewareHandler } from "hono";
import type { OrgDirectory } from "./authz.js";
import type { ApiEnv } from "./context.js";
import { ApiError } from "./errors.js";

/** What the gateway needs to authenticate a request: the token root key and the org directory. */
export interface TokenAuth {
  /** HANGAR_GATEWAY_TOKEN_KEY: the root key every token is signed with. */
  key: Uint8Array;
  directory: OrgDirectory;
  /** Whether the token with this id was revoked (the ORGS stream's revoked set). */
  isRevoked(tokenId: string): boolean;
  /** The clock expiry caveats are compared with; Date.now by default. */
  now?: () => number;
}

// `Bearer <token>` as OAuth clients send it, `FlyV1 <token>` as flyctl and fly-go send Fly's tokens.
const TOKEN_HEADER = /^(?:Bearer|FlyV1)\s+(\S+)\s*$/i;
const BASIC = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i;

/** The token an Authorization header carries; Basic (the token as password) only where `basic` allows it. */
export function presentedToken(header: string | undefined, basic: boolean): string | undefined {
  if (header === undefined) return undefined;
  const token = TOKEN_HEADER.exec(header)?.[1];
  if (token !== undefined || !basic) return token;
  const credentials = BASIC.exec(header)?.[1];
  if (credentials === undefined) return undefined;
  const decoded = Buffer.from(credentials, "base64").toString();
  const colon = decoded.indexOf(":");
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

/**
 * The principal of a request's token. Throws ApiError `unauthenticated` (401) for a missing header or
 * a malformed, forged, expired or revoked token, saying which.
 */
export function authenticate(auth: TokenAuth, header: string | undefined, basic: boolean): Principal {
  const token = presentedToken(header, basic);
  if (token === undefined) {
    throw ApiError.of(
      "unauthenticated",
      header === undefined
        ? "missing Authorization: Bearer <token> header"
        : "unsupported Authorization header",
    );
  }
  let principal: Principal;
  try {
    principal = verifyToken(auth.key, token, (auth.now ?? Date.now)());
  } catch (err) {
    if (!(err instanceof TokenError)) throw err;
    const why = {
      malformed: "malformed",
      bad_signature: "invalid",
      expired: "expired",
      unknown_caveat: "invalid",
    };
    throw ApiError.of("unauthenticated", `${why[err.reason]} token: ${err.message}`);
  }
  if (auth.isRevoked(principal.tokenId)) {
    throw ApiError.of("unauthenticated", `token ${principal.tokenId} was revoked`);
  }
  return principal;
}

/**
 * Lets a request through only with a valid token (`Authorization: Bearer <token>` or `FlyV1 <token>`),
 * and puts its principal and the org directory on the context; otherwise 401 `unauthenticated`.
 */
export function tokenAuth(auth: TokenAuth): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    try {
      c.set("principal", authenticate(auth, c.req.header("authorization"), false));
    } catch (err) {
      c.header("www-authenticate", 'Bearer realm="hangar"');
      throw err;
    }
    c.set("orgs", auth.directory);
    await next();
  };
}
