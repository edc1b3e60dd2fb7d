import { machineMetadataIssue } from "@hangar/domain";
import type { Context } from "hono";
import { Hono } from "hono";
import { z } from "zod";
import type { MachinesBackend } from "./backend.js";
import { readBody } from "./body.js";
import type { ApiEnv } from "./context.js";
import { ApiError } from "./errors.js";
import { MACHINE_PATH, machineTarget } from "./params.js";

const METADATA = `${MACHINE_PATH}/metadata`;

/** The body of `POST .../metadata/{key}`, as fly-go's SetMetadata sends it. */
const SetMetadataSchema = z.object({ value: z.string() });

/** The `key` path parameter, checked against the metadata rules (a 400 naming the problem). */
function metadataKey(c: Context, value?: string): string {
  const key = c.req.param("key") ?? "";
  const issue = machineMetadataIssue(key, value);
  if (issue) throw ApiError.of("invalid_argument", issue);
  return key;
}

/**
 * `.../metadata` routes: show the machine's config.metadata, set or delete one key (204). A change is
 * made in place: the machine keeps its version and is not restarted, and no lease nonce is needed.
 */
export function metadataRoutes(backend: MachinesBackend): Hono<ApiEnv> {
  return new Hono<ApiEnv>()
    .get(METADATA, async (c) => {
      return c.json(await backend.getMachineMetadata(...machineTarget(c, "read")));
    })
    .post(`${METADATA}/:key`, async (c) => {
      const [app, id, ctx] = machineTarget(c, "write");
      metadataKey(c);
      const { value } = await readBody(c, SetMetadataSchema);
      await backend.setMachineMetadata(app, id, metadataKey(c, value), value, ctx);
      return c.body(null, 204);
    })
    .delete(`${METADATA}/:key`, async (c) => {
      const [app, id, ctx] = machineTarget(c, "write");
      await backend.deleteMachineMetadata(app, id, metadataKey(c), ctx);
      return c.body(null, 204);
    });
}
