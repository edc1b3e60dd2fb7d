import { AppNameSchema, MachineIdSchema, validate } from "@hangar/config";
import type { Context } from "hono";
import type { z } from "zod";
import type { RequestContext } from "./backend.js";
import { type ApiEnv, requestContext } from "./context.js";
import { ApiError } from "./errors.js";

/** Path of one machine; the routes of a machine extend it. */
export const MACHINE_PATH = "/apps/:app_name/machines/:machine_id";

// Path parameters are checked at the edge because the backend puts them into NATS subjects.
function param<S extends z.ZodType<string>>(c: Context, name: string, schema: S): string {
  const result = validate(schema, c.req.param(name));
  if (!result.ok) throw ApiError.of("invalid_argument", `${name}: ${result.message}`);
  return result.value;
}

/** The `app_name` path parameter, validated. */
export const appParam = (c: Context): string => param(c, "app_name", AppNameSchema);

/** The `machine_id` path parameter, validated. */
export const machineParam = (c: Context): string => param(c, "machine_id", MachineIdSchema);

/** The app, machine id and backend context of a request on `/apps/:app_name/machines/:machine_id...`. */
export function machineTarget(c: Context<ApiEnv>): [app: string, machineId: string, ctx: RequestContext] {
  return [appParam(c), machineParam(c), requestContext(c)];
}
