import type { Principal } from "@hangar/auth";
import type { Context } from "hono";
import type { TunnelUpgrade } from "../tunnel/upgrade.js";
import type { OrgDirectory } from "./authz.js";
import type { RequestContext } from "./backend.js";

/** Header a lease holder sends with guarded writes and to release the lease, as Fly names it. */
export const LEASE_NONCE_HEADER = "fly-machine-lease-nonce";

/**
 * Variables the middlewares put on a request's context; `upgrade` is bound for `Connection: Upgrade` requests.
 * `principal` (the verified token) and `orgs` (the org directory) are set by the token middleware on
 * `/v1/*` and `/v2/*`.
 */
export type ApiEnv = {
  Variables: {
    requestId: string;
    principal: Principal;
    orgs: OrgDirectory;
    /** Set by the idempotency middleware when the request carries a key it honours. */
    operationId?: string;
    /** Set with operationId when an earlier attempt with the key may have acted (RequestContext.resumed). */
    operationResumed?: boolean;
  };
  Bindings: { upgrade?: TunnelUpgrade };
};

/** The backend's view of the request. */
export function requestContext(c: Context<ApiEnv>): RequestContext {
  return {
    requestId: c.get("requestId"),
    leaseNonce: c.req.header(LEASE_NONCE_HEADER) || undefined,
    signal: c.req.raw.signal,
    ...(c.get("principal") ? { principal: c.get("principal") } : {}),
    ...(c.get("operationId") ? { operationId: c.get("operationId") } : {}),
    ...(c.get("operationResumed") ? { resumed: true } : {}),
  };
}
