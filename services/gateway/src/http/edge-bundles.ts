import { createHash } from "node:crypto";
import { EDGE_BUNDLE_MAX_BYTES } from "@hangar/config";
import { EDGE_BUNDLE_DIGEST } from "@hangar/domain";
import { Hono } from "hono";
import { readBodyWithin } from "./body-limit.js";
import type { ApiEnv } from "./context.js";
import { ApiError } from "./errors.js";
import { appFor } from "./params.js";

/** Where edge bundles are kept, per app and digest (edge/bundles.ts). */
export interface EdgeBundleStore {
  /** Stores the code under its digest; false when it was already stored (nothing written). */
  put(app: string, digest: string, code: Uint8Array): Promise<boolean>;
  has(app: string, digest: string): Promise<boolean>;
}

/** Media types a bundle may be sent as (or none). */
const BUNDLE_TYPES = ["application/javascript", "text/javascript", "text/plain", "application/octet-stream"];

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * `POST /apps/{app}/edge/bundles`: the body is an edge app's bundle (one script, UTF-8), stored by
 * the SHA-256 of its bytes. `?digest=sha256:<hex>`, when sent, must be that digest. Sending the same
 * code again stores nothing and answers 200 instead of 201, with the same `{digest, size}`.
 */
export function edgeBundleRoutes(store: EdgeBundleStore, appExists: (app: string) => boolean): Hono<ApiEnv> {
  return new Hono<ApiEnv>().post("/apps/:app_name/edge/bundles", async (c) => {
    const app = appFor(c, "write");
    if (!appExists(app)) throw ApiError.of("not_found", `app ${app} not found`);
    const type = c.req.header("content-type")?.split(";")[0]?.trim().toLowerCase();
    if (type && !BUNDLE_TYPES.includes(type))
      throw ApiError.of(
        "unsupported_media_type",
        `an edge bundle is a script sent as ${BUNDLE_TYPES.join(" or ")}, not ${type}`,
      );
    const expected = c.req.query("digest");
    if (expected !== undefined && !EDGE_BUNDLE_DIGEST.test(expected))
      throw ApiError.of(
        "invalid_argument",
        `digest: expected sha256:<64 hex digits>, got ${JSON.stringify(expected)}`,
      );
    const code = await readBodyWithin(c, EDGE_BUNDLE_MAX_BYTES);
    if (code.byteLength === 0)
      throw ApiError.of("invalid_argument", "the bundle is empty: send the bundled script as the body");
    try {
      utf8.decode(code);
    } catch {
      throw ApiError.of("invalid_argument", "the bundle is not UTF-8 text: an edge bundle is one script");
    }
    // As libs/edge's EdgeBundle names it: the SHA-256 of the code's UTF-8 bytes.
    const digest = `sha256:${createHash("sha256").update(code).digest("hex")}`;
    if (expected !== undefined && expected !== digest)
      throw ApiError.of(
        "invalid_argument",
        `digest: the body's digest is ${digest}, not ${expected} (the bundle changed on its way)`,
      );
    const created = await store.put(app, digest, code);
    return c.json({ digest, size: code.byteLength }, created ? 201 : 200);
  });
}
