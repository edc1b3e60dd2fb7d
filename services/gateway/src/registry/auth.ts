import type { MiddlewareHandler } from "hono";
import { authenticate, type TokenAuth } from "../http/auth.js";
import type { ApiEnv } from "../http/context.js";
import { ApiError } from "../http/errors.js";
import { RegistryError } from "./errors.js";

/**
 * The /v2 API's auth: an API token as `Bearer <token>`, `FlyV1 <token>`, or as the password of Basic
 * auth (any user name), which is what registry clients send (`skopeo --creds x:<token>`, `docker
 * login`). Sets the principal and org directory as the /v1 middleware does. Anything else is 401
 * UNAUTHORIZED with a Basic challenge, so clients know to send credentials.
 */
export function registryAuth(auth: TokenAuth): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    try {
      c.set("principal", authenticate(auth, c.req.header("authorization"), true));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      c.header("www-authenticate", 'Basic realm="hangar"');
      const message =
        c.req.header("authorization") === undefined
          ? "authentication required: use Basic auth with the API token as password"
          : err.message;
      return c.json(new RegistryError("UNAUTHORIZED", message).toJSON(), 401);
    }
    c.set("orgs", auth.directory);
    await next();
  };
}
