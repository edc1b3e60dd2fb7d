import { createLogger } from "@hangar/telemetry";
import { afterAll, beforeAll, expect, it } from "vitest";
import { testAuth } from "../../test/auth-fixture.js";
import { createApi } from "./api.js";
import type { MachinesBackend } from "./backend.js";
import { ApiError } from "./errors.js";
import { type ApiServer, startApiServer } from "./server.js";

const { auth, token } = testAuth();

// Smoke test over a real socket; routes are covered in-process by api.test.ts. Every backend call
// answers not_found, which is enough to see a Fly error body cross the wire.
const backend = new Proxy({} as MachinesBackend, {
  get: () => async () => {
    throw ApiError.of("not_found", "nothing here");
  },
});

let server: ApiServer;
beforeAll(async () => {
  const api = createApi({
    backend,
    auth,
    logger: createLogger("smoke", { level: "silent" }),
  });
  server = await startApiServer(api, { port: 0 });
});
afterAll(() => server?.close());

it("listens on the port it reports", () => {
  expect(server.port).toBeGreaterThan(0);
  expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
});

it("answers /health and refuses /v1 without the token", async () => {
  const health = await fetch(`${server.url}/health`);
  expect(health.status).toBe(200);
  expect(await health.json()).toEqual({ ok: true, status: "ok" });

  const denied = await fetch(`${server.url}/v1/apps/web`);
  expect(denied.status).toBe(401);
  expect(await denied.json()).toMatchObject({ status: "unauthenticated" });
});

it("carries requests to the backend and its errors back in Fly's shape", async () => {
  const res = await fetch(`${server.url}/v1/apps/web/machines/m1`, {
    headers: { authorization: `Bearer ${token}`, "fly-request-id": "smoke-1" },
  });
  expect(res.status).toBe(404);
  expect(res.headers.get("fly-request-id")).toBe("smoke-1");
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(await res.json()).toEqual({ error: "nothing here", status: "not_found" });

  const bad = await fetch(`${server.url}/v1/apps/web/machines`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: "{not json",
  });
  expect(bad.status).toBe(400);
  expect(await bad.json()).toMatchObject({ status: "invalid_argument" });
});

it("fails to start on a port already taken", async () => {
  const api = createApi({ backend, auth, logger: createLogger("smoke", { level: "silent" }) });
  await expect(startApiServer(api, { port: server.port })).rejects.toThrow(/EADDRINUSE/);
});
