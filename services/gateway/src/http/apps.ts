import { CreateAppRequestSchema } from "@hangar/config";
import { Hono } from "hono";
import type { MachinesBackend } from "./backend.js";
import { readBody } from "./body.js";
import { type ApiEnv, requestContext } from "./context.js";
import { appParam } from "./params.js";

/** `/apps` routes: list, create, show, delete. */
export function appRoutes(backend: MachinesBackend): Hono<ApiEnv> {
  return new Hono<ApiEnv>()
    .get("/apps", async (c) => {
      // The spec requires org_slug; Hangar defaults it to "personal", like app creation does.
      const org = c.req.query("org_slug") || "personal";
      return c.json(await backend.listApps(org, requestContext(c)));
    })
    .post("/apps", async (c) => {
      const input = await readBody(c, CreateAppRequestSchema);
      return c.json(await backend.createApp(input, requestContext(c)), 201);
    })
    .get("/apps/:app_name", async (c) => {
      return c.json(await backend.getApp(appParam(c), requestContext(c)));
    })
    .delete("/apps/:app_name", async (c) => {
      await backend.deleteApp(appParam(c), requestContext(c));
      return c.body(null, 202);
    });
}
