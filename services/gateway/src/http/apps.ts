import { CreateAppRequestSchema } from "@hangar/config";
import { Hono } from "hono";
import { z } from "zod";
import { authorizeOrg, coversApp, coversOrg, principalOf } from "./authz.js";
import type { MachinesBackend } from "./backend.js";
import { readBody } from "./body.js";
import { type ApiEnv, requestContext } from "./context.js";
import { ApiError } from "./errors.js";
import { appFor } from "./params.js";

// Without org_slug, an app goes to the token's own org (Fly's default is the user's personal org).
const CreateAppSchema = CreateAppRequestSchema.extend({ org_slug: z.string().min(1).nullish() });

/** `/apps` routes: list, create, show, delete, each as the token's caveats allow. */
export function appRoutes(backend: MachinesBackend): Hono<ApiEnv> {
  return new Hono<ApiEnv>()
    .get("/apps", async (c) => {
      const p = principalOf(c);
      // The spec requires org_slug; Hangar defaults it to the token's org, or "personal" for the operator.
      const org = c.req.query("org_slug") || p.org || "personal";
      if (!coversOrg(p, org)) throw ApiError.of("not_found", `org ${org} not found`);
      const list = await backend.listApps(org, requestContext(c));
      const apps = list.apps.filter((a) => coversApp(p, org, a.name));
      return c.json({ total_apps: apps.length, apps });
    })
    .post("/apps", async (c) => {
      const p = principalOf(c);
      const input = await readBody(c, CreateAppSchema);
      const org = input.org_slug ?? p.org ?? "personal";
      authorizeOrg(c, org, "write");
      return c.json(await backend.createApp({ ...input, org_slug: org }, requestContext(c)), 201);
    })
    .get("/apps/:app_name", async (c) => {
      return c.json(await backend.getApp(appFor(c, "read"), requestContext(c)));
    })
    .delete("/apps/:app_name", async (c) => {
      const app = appFor(c, "write");
      // Destroying an app is an org's act, like creating one: a deploy token may change its app, not end it.
      if (principalOf(c).apps !== undefined) {
        throw ApiError.of("permission_denied", `token is scoped to apps: it may not delete app ${app}`);
      }
      await backend.deleteApp(app, requestContext(c));
      return c.body(null, 202);
    });
}
