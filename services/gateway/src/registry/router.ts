import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "@hangar/telemetry";
import { type Context, Hono } from "hono";
import type { TokenAuth } from "../http/auth.js";
import { authorizeApp, principalOf } from "../http/authz.js";
import type { ApiEnv } from "../http/context.js";
import { ApiError } from "../http/errors.js";
import { registryAuth } from "./auth.js";
import {
  cancelUpload,
  finishUpload,
  getBlob,
  type OrgCharge,
  patchUpload,
  startUpload,
  uploadStatus,
} from "./blobs.js";
import { RegistryError, toRegistryError } from "./errors.js";
import { getManifest, putManifest } from "./manifests.js";
import { parseRegistryPath, type RegistryPath } from "./paths.js";
import type { BlobQuota } from "./quota.js";
import type { RegistryStore } from "./store.js";
import { listTags } from "./tags.js";
import { type UploadSessionOptions, UploadSessions } from "./upload-sessions.js";

export interface RegistryRoutesOptions {
  store: RegistryStore;
  /** Verifies API tokens, accepted as Bearer or FlyV1 tokens or as the password of Basic auth. */
  auth: TokenAuth;
  logger: Logger;
  /** Where upload sessions keep their bytes; defaults to `<os tmpdir>/hangar-gateway-uploads`. */
  uploadDir?: string;
  /** How long an untouched upload lives and how large a blob may be (UploadSessions' defaults). */
  uploads?: UploadSessionOptions;
  /** Each org's stored blob bytes and their limit; without it, no quota. */
  quota?: BlobQuota;
}

/** The OCI Distribution API, to mount on `/v2`. */
export function registryRoutes(o: RegistryRoutesOptions): Hono<ApiEnv> {
  const uploads = new UploadSessions(o.uploadDir ?? join(tmpdir(), "hangar-gateway-uploads"), o.uploads);
  const routes = new Hono<ApiEnv>();
  routes.use("*", async (c, next) => {
    c.header("docker-distribution-api-version", "registry/2.0");
    await next();
  });
  routes.use("*", registryAuth(o.auth));
  routes.all("*", async (c) => {
    try {
      // Everything after /v2; routes mounted elsewhere see the same suffix.
      const path = parseRegistryPath(c.req.path.replace(/^\/v2(?=\/|$)/, ""));
      if (path === undefined)
        throw new RegistryError("NAME_UNKNOWN", `no registry endpoint at ${c.req.path}`);
      const read = c.req.method === "GET" || c.req.method === "HEAD";
      const org =
        path.kind === "base" ? undefined : authorizeRepository(c, path.name, read ? "read" : "write");
      const charge = o.quota && org !== undefined ? { org, quota: o.quota } : undefined;
      return await dispatch(c, path, o.store, uploads, charge);
    } catch (error) {
      const mapped = toRegistryError(error);
      if (mapped instanceof RegistryError) {
        if (mapped.status === 401) c.header("www-authenticate", 'Basic realm="hangar"');
        return c.body(JSON.stringify(mapped.toJSON()), mapped.status as 400, {
          "content-type": "application/json",
        });
      }
      o.logger.error({ err: error, method: c.req.method, path: c.req.path }, "registry request failed");
      const body = { errors: [{ code: "UNKNOWN", message: "internal error" }] };
      return c.json(body, 500);
    }
  });
  return routes;
}

/**
 * A repository belongs to the app its name starts with (`<app>` or `<app>/...`): pulling needs read
 * access to that app, pushing write access. Another org's repository is NAME_UNKNOWN (404) like a
 * missing one; one of the token's org outside its caveats is DENIED (403). A repository of no app
 * (the base images an operator copies in, `library/node:20`) is the platform's: only an operator
 * token reaches it, and it counts against no org. Returns the org the repository is in.
 */
function authorizeRepository(c: Context<ApiEnv>, name: string, access: "read" | "write"): string | undefined {
  const app = name.split("/")[0] as string;
  const p = principalOf(c);
  if (c.get("orgs").orgOf(app) === undefined && p.org === undefined && p.apps === undefined) {
    if (p.execOnly || (p.readOnly && access === "write")) {
      throw new RegistryError("DENIED", `token may not ${access === "read" ? "pull" : "push"} ${name}`);
    }
    return undefined;
  }
  try {
    return authorizeApp(c, app, access).org;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    if (err.code === "permission_denied") throw new RegistryError("DENIED", err.message);
    throw new RegistryError("NAME_UNKNOWN", `repository ${name} not found`);
  }
}

/** True if the token may pull `repository`: the source of a cross-repository mount. */
function mayPull(c: Context<ApiEnv>, repository: string): boolean {
  try {
    authorizeRepository(c, repository, "read");
    return true;
  } catch (err) {
    if (err instanceof RegistryError) return false;
    throw err;
  }
}

async function dispatch(
  c: Context<ApiEnv>,
  path: RegistryPath,
  store: RegistryStore,
  uploads: UploadSessions,
  charge: OrgCharge | undefined,
): Promise<Response> {
  const method = c.req.method;
  const unsupported = (): never => {
    throw new RegistryError("UNSUPPORTED", `${method} is not supported on ${c.req.path}`);
  };
  switch (path.kind) {
    case "base":
      return method === "GET" || method === "HEAD" ? c.json({}) : unsupported();
    case "tags":
      return method === "GET" ? listTags(c, store, path.name) : unsupported();
    case "manifest":
      if (method === "GET" || method === "HEAD") return getManifest(c, store, path.name, path.reference);
      return method === "PUT" ? putManifest(c, store, path.name, path.reference) : unsupported();
    case "blob":
      return method === "GET" || method === "HEAD"
        ? getBlob(c, store, path.name, path.digest)
        : unsupported();
    case "uploads":
      return method === "POST"
        ? startUpload(c, store, uploads, path.name, (from) => mayPull(c, from), charge)
        : unsupported();
    case "upload":
      if (method === "GET") return uploadStatus(c, uploads, path.name, path.id);
      if (method === "PATCH") return patchUpload(c, uploads, path.name, path.id);
      if (method === "PUT") return finishUpload(c, store, uploads, path.name, path.id, charge);
      return method === "DELETE" ? cancelUpload(c, uploads, path.name, path.id) : unsupported();
  }
}
