import { createLogger } from "@hangar/telemetry";
import { Hono } from "hono";
import { expect, it } from "vitest";
import type { ApiEnv } from "./context.js";
import { errorHandler, notFound } from "./error-handler.js";
import { ApiError, ERROR_STATUS } from "./errors.js";
import { requestId } from "./request-id.js";

function appThrowing(err: unknown) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger("test", {
    destination: { write: (s: string) => void lines.push(JSON.parse(s)) },
  });
  const app = new Hono<ApiEnv>()
    .use(requestId())
    .get("/boom", () => {
      throw err;
    })
    .onError(errorHandler(logger))
    .notFound(notFound);
  return { app, lines };
}

it("sends an ApiError as Fly's body with its status, without logging a client error", async () => {
  const { app, lines } = appThrowing(new ApiError(404, "not_found", "machine m1 not found"));
  const res = await app.request("/boom");
  expect(res.status).toBe(404);
  expect(await res.json()).toEqual({ error: "machine m1 not found", status: "not_found" });
  expect(lines).toEqual([]);
});

it("uses the status ERROR_STATUS gives a code", async () => {
  const { app } = appThrowing(ApiError.of("insufficient_capacity", "no host in ams can take 8 cpus"));
  const res = await app.request("/boom");
  expect(res.status).toBe(422);
  expect(await res.json()).toEqual({
    error: "no host in ams can take 8 cpus",
    status: "insufficient_capacity",
  });
  expect(ERROR_STATUS.deadline_exceeded).toBe(408);
  expect(ERROR_STATUS.aborted).toBe(409);
  expect(ERROR_STATUS.failed_precondition).toBe(412);
});

it("logs a 5xx ApiError", async () => {
  const { app, lines } = appThrowing(ApiError.of("unavailable", "placement is not answering"));
  const res = await app.request("/boom", { headers: { "fly-request-id": "r-503" } });
  expect(res.status).toBe(503);
  expect(lines).toMatchObject([
    { level: 50, msg: "placement is not answering", request_id: "r-503", code: "unavailable" },
  ]);
});

it("hides an unexpected error behind a generic 500 and logs it with details", async () => {
  const { app, lines } = appThrowing(new Error("connection to nats lost: secret detail"));
  const res = await app.request("/boom", { headers: { "fly-request-id": "r-500" } });
  expect(res.status).toBe(500);
  const text = await res.text();
  expect(JSON.parse(text)).toEqual({ error: "internal error", status: "unknown" });
  expect(text).not.toContain("secret");
  expect(lines).toMatchObject([
    { level: 50, msg: "unhandled error", request_id: "r-500", method: "GET", path: "/boom" },
  ]);
  expect(JSON.stringify(lines[0])).toContain("connection to nats lost");
});

it("treats an ApiError with a non-error status as a 500", async () => {
  const { app } = appThrowing(new ApiError(200, "odd", "not an error status"));
  const res = await app.request("/boom");
  expect(res.status).toBe(500);
  expect(await res.json()).toEqual({ error: "not an error status", status: "odd" });
});

it("answers unknown routes with a Fly-shaped 404", async () => {
  const { app } = appThrowing(null);
  const res = await app.request("/nope", { method: "PUT" });
  expect(res.status).toBe(404);
  expect(await res.json()).toEqual({ error: "no route for PUT /nope", status: "not_found" });
});
