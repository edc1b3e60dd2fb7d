import { Hono } from "hono";
import type { BuildsBackend } from "./builds-backend.js";
import { buildOptions } from "./builds-query.js";
import { type ApiEnv, requestContext } from "./context.js";
import { ApiError } from "./errors.js";
import { appFor } from "./params.js";
import { flag } from "./query.js";

/** Media types a build context may be sent as. */
const CONTEXT_TYPES = ["application/x-tar", "application/octet-stream"];

const BUILD_PATH = "/apps/:app_name/builds/:build_id";

function contentLength(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d+$/.test(header)) return undefined;
  return Number(header);
}

/** `/apps/{app}/builds` routes: upload a context and request its build, list, show, cancel, follow its events. */
export function buildRoutes(backend: BuildsBackend): Hono<ApiEnv> {
  return new Hono<ApiEnv>()
    .post("/apps/:app_name/builds", async (c) => {
      const app = appFor(c, "write");
      const opts = buildOptions(c);
      const type = c.req.header("content-type")?.split(";")[0]?.trim().toLowerCase();
      if (type && !CONTEXT_TYPES.includes(type)) {
        throw ApiError.of(
          "unsupported_media_type",
          `a build context is a tar sent as ${CONTEXT_TYPES.join(" or ")}, not ${type}`,
        );
      }
      const upload = { body: c.req.raw.body, length: contentLength(c.req.header("content-length")) };
      return c.json(await backend.createBuild(app, upload, opts, requestContext(c)), 201);
    })
    .get("/apps/:app_name/builds", async (c) => {
      return c.json(await backend.listBuilds(appFor(c, "read"), requestContext(c)));
    })
    .get(BUILD_PATH, async (c) => {
      return c.json(await backend.getBuild(appFor(c, "read"), c.req.param("build_id"), requestContext(c)));
    })
    .post(`${BUILD_PATH}/cancel`, async (c) => {
      return c.json(
        await backend.cancelBuild(appFor(c, "write"), c.req.param("build_id"), requestContext(c)),
      );
    })
    .get(`${BUILD_PATH}/events`, async (c) => {
      const follow = flag(c, "follow");
      const ctx = requestContext(c);
      // Ends the backend's reading when the client goes away or the body stream is cancelled.
      const done = new AbortController();
      const signal = AbortSignal.any([ctx.signal, done.signal]);
      const events = await backend.buildEvents(
        appFor(c, "read"),
        c.req.param("build_id"),
        { follow },
        { ...ctx, signal },
      );
      const it = events[Symbol.asyncIterator]();
      const encoder = new TextEncoder();
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const next = await it.next();
            if (next.done) controller.close();
            else controller.enqueue(encoder.encode(`${JSON.stringify(next.value)}\n`));
          } catch (err) {
            controller.error(err);
          }
        },
        async cancel() {
          done.abort();
          await it.return?.(undefined);
        },
      });
      return c.body(body, 200, { "content-type": "application/x-ndjson", "cache-control": "no-cache" });
    });
}
