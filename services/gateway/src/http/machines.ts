import { CreateMachineRequestSchema, UpdateMachineRequestSchema } from "@hangar/config";
import type { UpstreamRegistries } from "@hangar/oci";
import { Hono } from "hono";
import type { RegistryStore } from "../registry/mod.js";
import type { MachinesBackend } from "./backend.js";
import { readBody } from "./body.js";
import { type ApiEnv, requestContext } from "./context.js";
import { admitDirImage } from "./dir-images.js";
import { admitImage } from "./image-access.js";
import { appFor, MACHINE_PATH, machineTarget } from "./params.js";
import { destroyOptions, listFilter } from "./query.js";

/**
 * `/apps/{app}/machines` routes: list, create, show, its versions, update, destroy. A `dir:` image must lie under
 * `dirImageRoots` (none: `dir:` images are off). An image of another org's app is refused as not
 * found (image-access.ts); `registry` tells whether an operator's `library/x` shadows such an app.
 */
export function machineRoutes(
  backend: MachinesBackend,
  dirImageRoots: readonly string[] = [],
  registry?: RegistryStore,
  upstreams: UpstreamRegistries = {},
): Hono<ApiEnv> {
  // A machine's image, at create and update: a `dir:` image under the roots, no other org's app's image.
  const admit = async (orgs: ApiEnv["Variables"]["orgs"], app: string, config: { image: string }) => {
    admitDirImage(config, dirImageRoots);
    await admitImage(orgs, registry, orgs.orgOf(app) ?? "", config.image, upstreams);
  };
  return new Hono<ApiEnv>()
    .get("/apps/:app_name/machines", async (c) => {
      return c.json(await backend.listMachines(appFor(c, "read"), listFilter(c), requestContext(c)));
    })
    .post("/apps/:app_name/machines", async (c) => {
      const app = appFor(c, "write");
      const input = await readBody(c, CreateMachineRequestSchema);
      await admit(c.get("orgs"), app, input.config);
      return c.json(await backend.createMachine(app, input, requestContext(c)));
    })
    .get(MACHINE_PATH, async (c) => {
      return c.json(await backend.getMachine(...machineTarget(c, "read")));
    })
    .get(`${MACHINE_PATH}/versions`, async (c) => {
      return c.json(await backend.listMachineVersions(...machineTarget(c, "read")));
    })
    .post(MACHINE_PATH, async (c) => {
      const [app, id, ctx] = machineTarget(c, "write");
      const input = await readBody(c, UpdateMachineRequestSchema);
      await admit(c.get("orgs"), app, input.config);
      return c.json(await backend.updateMachine(app, id, input, ctx));
    })
    .delete(MACHINE_PATH, async (c) => {
      const [app, id, ctx] = machineTarget(c, "write");
      await backend.destroyMachine(app, id, destroyOptions(c), ctx);
      return c.json({ ok: true });
    });
}
