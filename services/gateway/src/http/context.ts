import type { Context } from "hono";
import type { TunnelUpgrade } from "../tunnel/upgrade.js";
import type { RequestContext } from "./backend.js";

/** Header a lease holder sends with guarded writes and to release the lease, as Fly names it. */
export const LEASE_NONCE_HEADER = "fly-machine-lease-nonce";

/** Variables the middlewares put on a request's context; `upgrade` is bound for `Connection: Upgrade` requests. */
export type ApiEnv = { Variables: { requestId: string }; Bindings: { upgrade?: TunnelUpgrade } };

/** The backend's view of the request. */
export function requestContext(c: Context<ApiEnv>): RequestContext {
  return {
    requestId: c.get("requestId"),
    leaseNonce: c.req.header(LEASE_NONCE_HEADER) || undefined,
    signal: c.req.raw.signal,
  };
}
