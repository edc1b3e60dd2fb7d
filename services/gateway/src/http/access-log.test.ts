import { createLogger } from "@hangar/telemetry";
import { Hono } from "hono";
import { expect, it } from "vitest";
import { accessLog } from "./access-log.js";
import type { ApiEnv } from "./context.js";
import { requestId } from "./request-id.js";

function appLoggingAt(level: string) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger("test", {
    level,
    destination: { write: (s: string) => void lines.push(JSON.parse(s)) },
  });
  const app = new Hono<ApiEnv>()
    .use(requestId(), accessLog(logger))
    .get("/v1/apps/:app_name", (c) => c.json({ name: c.req.param("app_name") }, 200));
  return { app, lines };
}

it("logs each request at debug with its id, method, path, status and duration", async () => {
  const { app, lines } = appLoggingAt("debug");
  await app.request("/v1/apps/web", { headers: { "fly-request-id": "r-1" } });
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({
    level: 20,
    msg: "request",
    request_id: "r-1",
    method: "GET",
    path: "/v1/apps/web",
    status: 200,
  });
  expect(lines[0]?.duration_ms).toEqual(expect.any(Number));
});

it("logs nothing above debug", async () => {
  const { app, lines } = appLoggingAt("info");
  const res = await app.request("/v1/apps/web");
  expect(res.status).toBe(200);
  expect(lines).toEqual([]);
});
