import { LeaseRequestSchema } from "@hangar/config";
import { Hono } from "hono";
import type { LeaseView, MachinesBackend } from "./backend.js";
import { readBody } from "./body.js";
import type { ApiEnv } from "./context.js";
import { MACHINE_PATH, machineTarget } from "./params.js";
import { leaseTtl } from "./query.js";

const LEASE = `${MACHINE_PATH}/lease`;

// The spec's Lease is flat; fly-go reads {status, data: {nonce, ...}}. Both shapes are sent.
const leaseBody = (lease: LeaseView) => ({ ...lease, status: "success", data: lease });

/** `.../lease` routes: show, acquire or refresh (with the nonce header), release (with the nonce header). */
export function leaseRoutes(backend: MachinesBackend): Hono<ApiEnv> {
  return new Hono<ApiEnv>()
    .get(LEASE, async (c) => {
      return c.json(leaseBody(await backend.getLease(...machineTarget(c, "read"))));
    })
    .post(LEASE, async (c) => {
      const [app, id, ctx] = machineTarget(c, "write");
      const body = await readBody(c, LeaseRequestSchema, { optional: true });
      const opts = { ttlSeconds: body.ttl ?? leaseTtl(c), description: body.description ?? undefined };
      return c.json(leaseBody(await backend.acquireLease(app, id, opts, ctx)));
    })
    .delete(LEASE, async (c) => {
      await backend.releaseLease(...machineTarget(c, "write"));
      return c.json({ ok: true });
    });
}
