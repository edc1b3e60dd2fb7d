import { CreateMachineRequestSchema, UpdateMachineRequestSchema } from "@hangar/config";
import { Hono } from "hono";
import type { MachinesBackend } from "./backend.js";
import { readBody } from "./body.js";
import { type ApiEnv, requestContext } from "./context.js";
import { admitDirImage } from "./dir-images.js";
import { appFor, MACHINE_PATH, machineTarget } from "./params.js";
import { destroyOptions, listFilter } from "./query.js";

/**
 * `/apps/{app}/machines` routes: list, create, show, update, destroy. A `dir:` image must lie under
 * `dirImageRoots` (none: `dir:` images are off).
 */
export function machineRoutes(backend: MachinesBackend, dirImageRoots: readonly string[] = []): Hono<ApiEnv> {
  return new Hono<ApiEnv>()
    .get("/apps/:app_name/machines", async (c) => {
      return c.json(await backend.listMachines(appFor(c, "read"), listFilter(c), requestContext(c)));
    })
    .post("/apps/:app_name/machines", async (c) => {
      const app = appFor(c, "write");
      const input = await readBody(c, CreateMachineRequestSchema);
      admitDirImage(input.config, dirImageRoots);
      return c.json(await backend.createMachine(app, input, requestContext(c)));
    })
    .get(MACHINE_PATH, async (c) => {
      return c.json(await backend.getMachine(...machineTarget(c, "read")));
    })
    .post(MACHINE_PATH, async (c) => {
      const [app, id, ctx] = machineTarget(c, "write");
      const input = await readBody(c, UpdateMachineRequestSchema);
      admitDirImage(input.config, dirImageRoots);
      return c.json(await backend.updateMachine(app, id, input, ctx));
    })
    .delete(MACHINE_PATH, async (c) => {
      const [app, id, ctx] = machineTarget(c, "write");
      await backend.destroyMachine(app, id, destroyOptions(c), ctx);
      return c.json({ ok: true });
    });
}
