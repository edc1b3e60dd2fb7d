import { validate } from "@hangar/config";
import { type Context, Hono } from "hono";
import type { Access } from "../http/authz.js";
import { authorizeApp } from "../http/authz.js";
import type { RequestContext } from "../http/backend.js";
import { readBody } from "../http/body.js";
import { type ApiEnv, requestContext } from "../http/context.js";
import { ApiError } from "../http/errors.js";
import { appParam } from "../http/params.js";
import {
  CreateVolumeRequestSchema,
  ExtendVolumeRequestSchema,
  UpdateVolumeRequestSchema,
  VolumeIdSchema,
  type VolumesBackend,
} from "./api.js";

/** Path of one volume; its extend and snapshots routes extend it. */
export const VOLUME_PATH = "/apps/:app_name/volumes/:volume_id";

/**
 * The app, volume id and backend context of a request on a volume's path, once the token may do
 * `access` to the app. A malformed id is a 400 (it would go into NATS subjects); another org's
 * app is a 404, as authz.ts answers, so another org's volume is never found either.
 */
function volumeTarget(c: Context<ApiEnv>, access: Access): [string, string, RequestContext] {
  const app = appParam(c);
  authorizeApp(c, app, access);
  const id = validate(VolumeIdSchema, c.req.param("volume_id"));
  if (!id.ok) throw ApiError.of("invalid_argument", `volume_id: ${id.message}`);
  return [app, id.value, requestContext(c)];
}

/**
 * Fly's Volumes API: `/apps/{app}/volumes` (list, create), `.../{volume_id}` (get, update with POST,
 * delete), `PUT .../extend`, `.../snapshots` (list, create). Reads need read access to the app,
 * everything else write access.
 */
export function volumeRoutes(backend: VolumesBackend): Hono<ApiEnv> {
  return new Hono<ApiEnv>()
    .get("/apps/:app_name/volumes", async (c) => {
      const app = appParam(c);
      authorizeApp(c, app, "read");
      return c.json(await backend.listVolumes(app, requestContext(c)));
    })
    .post("/apps/:app_name/volumes", async (c) => {
      const app = appParam(c);
      const { org } = authorizeApp(c, app, "write");
      const input = await readBody(c, CreateVolumeRequestSchema);
      return c.json(await backend.createVolume(app, org, input, requestContext(c)));
    })
    .get(VOLUME_PATH, async (c) => {
      return c.json(await backend.getVolume(...volumeTarget(c, "read")));
    })
    .post(VOLUME_PATH, async (c) => {
      const [app, id, ctx] = volumeTarget(c, "write");
      const input = await readBody(c, UpdateVolumeRequestSchema);
      return c.json(await backend.updateVolume(app, id, input, ctx));
    })
    .delete(VOLUME_PATH, async (c) => {
      return c.json(await backend.deleteVolume(...volumeTarget(c, "write")));
    })
    .put(`${VOLUME_PATH}/extend`, async (c) => {
      const [app, id, ctx] = volumeTarget(c, "write");
      const { size_gb } = await readBody(c, ExtendVolumeRequestSchema);
      return c.json(await backend.extendVolume(app, id, size_gb, ctx));
    })
    .get(`${VOLUME_PATH}/snapshots`, async (c) => {
      return c.json(await backend.listSnapshots(...volumeTarget(c, "read")));
    })
    .post(`${VOLUME_PATH}/snapshots`, async (c) => {
      return c.json(await backend.createSnapshot(...volumeTarget(c, "write")));
    });
}
