import { createLogger } from "@hangar/telemetry";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { jsonBodyLimit } from "./body-limit.js";
import type { ApiEnv } from "./context.js";
import { errorHandler } from "./error-handler.js";

const LIMIT = 1000;

function app(): Hono<ApiEnv> {
  const a = new Hono<ApiEnv>();
  a.onError(errorHandler(createLogger("body-limit-test", { level: "silent" })));
  a.use("/v1/*", jsonBodyLimit(LIMIT));
  a.post("/v1/*", async (c) => c.json({ received: (await c.req.text()).length }));
  return a;
}

function streamed(bytes: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= bytes) return controller.close();
      const chunk = new Uint8Array(Math.min(300, bytes - sent)).fill(0x61);
      sent += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
}

const post = (
  path: string,
  body: string | ReadableStream<Uint8Array>,
  headers: Record<string, string> = {},
) => app().request(path, { method: "POST", body, headers, duplex: "half" } as RequestInit);

describe("JSON body limit", () => {
  it("refuses a body whose Content-Length is over the limit with 413 resource_exhausted", async () => {
    const res = await post("/v1/apps", "x".repeat(LIMIT + 1), { "content-length": String(LIMIT + 1) });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      error: `request body is larger than the API's limit of ${LIMIT} bytes`,
      status: "resource_exhausted",
    });
  });

  it("refuses a streamed body as soon as it passes the limit, and lets one within it through whole", async () => {
    expect((await post("/v1/apps", streamed(LIMIT * 5))).status).toBe(413);
    const ok = await post("/v1/apps", streamed(LIMIT));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ received: LIMIT });
  });

  it("leaves build context uploads to their own limit", async () => {
    const res = await post("/v1/apps/web/builds", streamed(LIMIT * 5));
    expect(await res.json()).toEqual({ received: LIMIT * 5 });
  });
});
