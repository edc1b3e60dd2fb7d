import type { UpstreamRegistries } from "@hangar/oci";
import { Hono } from "hono";
import type { RegistryStore } from "../registry/mod.js";
import { type ApiEnv, requestContext } from "./context.js";
import { admitImage } from "./image-access.js";
import { appFor } from "./params.js";
import type { ReleasesBackend } from "./releases-backend.js";
import { createReleaseInput, releaseOutcome, versionParam } from "./releases-body.js";

/**
 * `/apps/{app}/releases` routes: create, end (PATCH), list, show. A release's image of another org's
 * app is refused as not found (image-access.ts).
 */
export function releaseRoutes(
  backend: ReleasesBackend,
  registry?: RegistryStore,
  upstreams: UpstreamRegistries = {},
): Hono<ApiEnv> {
  return new Hono<ApiEnv>()
    .post("/apps/:app_name/releases", async (c) => {
      const app = appFor(c, "write");
      const input = await createReleaseInput(c);
      await admitImage(c.get("orgs"), registry, c.get("orgs").orgOf(app) ?? "", input.image, upstreams);
      return c.json(await backend.createRelease(app, input, requestContext(c)), 201);
    })
    .get("/apps/:app_name/releases", async (c) => {
      return c.json(await backend.listReleases(appFor(c, "read"), requestContext(c)));
    })
    .get("/apps/:app_name/releases/:version", async (c) => {
      return c.json(await backend.getRelease(appFor(c, "read"), versionParam(c), requestContext(c)));
    })
    .patch("/apps/:app_name/releases/:version", async (c) => {
      const [app, version] = [appFor(c, "write"), versionParam(c)];
      const outcome = await releaseOutcome(c);
      return c.json(await backend.endRelease(app, version, outcome, requestContext(c)));
    });
}
