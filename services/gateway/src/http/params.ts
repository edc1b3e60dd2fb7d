import { AppNameSchema, MachineIdSchema, validate } from "@hangar/config";
import type { Context } from "hono";
import type { z } from "zod";
import { type Access, authorizeApp } from "./authz.js";
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

/**
 * The `app_name` path parameter, validated, once the request's token may do `access` to the app
 * (authz.ts: 404 for another org's app, 403 for one its caveats deny).
 */
export function appFor(c: Context<ApiEnv>, access: Access): string {
  const app = appParam(c);
  authorizeApp(c, app, access);
  return app;
}

/**
 * The app, machine id and backend context of a request on `/apps/:app_name/machines/:machine_id...`,
 * once the token may do `access` to the app.
 */
export function machineTarget(
  c: Context<ApiEnv>,
  access: Access,
): [app: string, machineId: string, ctx: RequestContext] {
  return [appFor(c, access), machineParam(c), requestContext(c)];
}
