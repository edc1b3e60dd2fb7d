import { validate } from "@hangar/config";
import { isSecretName, MAX_SECRET_VALUE_BYTES } from "@hangar/secrets";
import { type Context, Hono } from "hono";
import { z } from "zod";
import { authorizeApp, authorizeOrg } from "./authz.js";
import { readBody } from "./body.js";
import { type ApiEnv, requestContext } from "./context.js";
import { ApiError } from "./errors.js";
import { appParam } from "./params.js";
import type { SecretScope, SecretsBackend, SecretsUpdate } from "./secrets-backend.js";

const OrgSlugSchema = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, "expected lowercase letters, digits and dashes");

// Fly's UpdateAppSecrets body (`values`: a null value unsets), plus `stage` as flyctl's --stage.
const UpdateSchema = z.object({
  values: z.record(z.string(), z.string().nullable()),
  stage: z.boolean().optional(),
});

function orgParam(c: Context): string {
  const result = validate(OrgSlugSchema, c.req.param("org_slug"));
  if (!result.ok) throw ApiError.of("invalid_argument", `org_slug: ${result.message}`);
  return result.value;
}

function nameParam(c: Context): string {
  const name = c.req.param("name") ?? "";
  if (!isSecretName(name)) throw ApiError.of("invalid_argument", `name: ${secretNameRule(name)}`);
  return name;
}

function secretNameRule(name: string): string {
  return `${JSON.stringify(name.slice(0, 64))} is not an environment variable name (letters, digits and _, not starting with a digit)`;
}

/**
 * Most bytes of values (UTF-8) one update may set. A 1 MiB body of values becomes a SecretsUpdated
 * event of more than 1 MiB once sealed and encoded; half of it leaves ample room under any
 * nats-server's max_payload, and an app needing more can set its secrets in several calls.
 */
export const MAX_SECRETS_UPDATE_BYTES = 512 * 1024;

async function updateBody(c: Context): Promise<SecretsUpdate> {
  const body = await readBody(c, UpdateSchema);
  let total = 0;
  for (const [name, value] of Object.entries(body.values)) {
    if (!isSecretName(name)) throw ApiError.of("invalid_argument", `values: ${secretNameRule(name)}`);
    const bytes = value === null ? 0 : Buffer.byteLength(value, "utf8");
    if (bytes > MAX_SECRET_VALUE_BYTES) {
      throw ApiError.of("invalid_argument", `values.${name}: longer than ${MAX_SECRET_VALUE_BYTES} bytes`);
    }
    total += bytes;
  }
  if (total > MAX_SECRETS_UPDATE_BYTES) {
    throw ApiError.of(
      "resource_exhausted",
      `values: ${total} bytes in one update, more than ${MAX_SECRETS_UPDATE_BYTES}; set them in several calls`,
    );
  }
  return { values: body.values, stage: body.stage ?? false };
}

/**
 * Secrets in the REST shape of Fly's current API: `GET`/`POST /apps/{app}/secrets` and
 * `DELETE /apps/{app}/secrets/{name}`, and the same under `/orgs/{org_slug}/secrets`. Values go in
 * and never come out. A POST with `stage: true` stages its changes; one without `stage` deploys them
 * with whatever was staged (an empty `values` deploys only what was staged, as `fly secrets deploy`).
 */
export function secretRoutes(backend: SecretsBackend): Hono<ApiEnv> {
  const routes = new Hono<ApiEnv>();
  const scopes: Array<[string, (c: Context<ApiEnv>, write: boolean) => SecretScope]> = [
    [
      "/apps/:app_name/secrets",
      (c, write) => {
        const name = appParam(c);
        authorizeApp(c, name, write ? "write" : "read");
        return { kind: "app", name };
      },
    ],
    [
      "/orgs/:org_slug/secrets",
      (c, write) => {
        const name = orgParam(c);
        authorizeOrg(c, name, write ? "write" : "read");
        return { kind: "org", name };
      },
    ],
  ];
  for (const [path, scopeOf] of scopes) {
    routes
      .get(path, (c) => c.json(backend.list(scopeOf(c, false))))
      .post(path, async (c) => {
        const scope = scopeOf(c, true);
        const update = await updateBody(c);
        if (scope.kind === "org" && update.stage) {
          throw ApiError.of("invalid_argument", "stage: org secrets are not staged (no machines to deploy)");
        }
        return c.json(await backend.update(scope, update, requestContext(c)));
      })
      .delete(`${path}/:name`, async (c) => {
        const scope = scopeOf(c, true);
        return c.json(await backend.unset(scope, nameParam(c), requestContext(c)));
      });
  }
  return routes;
}
