import { createLogger } from "@hangar/telemetry";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { bearerAuth } from "./auth.js";
import type { ApiEnv } from "./context.js";
import { errorHandler } from "./error-handler.js";

const app = new Hono<ApiEnv>()
  .use(bearerAuth("s3cret-token"))
  .get("/", (c) => c.text("in"))
  .onError(errorHandler(createLogger("test", { level: "silent" })));

const get = (authorization?: string) =>
  app.request("/", { headers: authorization === undefined ? {} : { authorization } });

describe("bearerAuth", () => {
  it("lets the right token through, with any casing of the scheme", async () => {
    for (const header of ["Bearer s3cret-token", "bearer s3cret-token", "Bearer   s3cret-token "]) {
      const res = await get(header);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("in");
    }
  });

  it("answers 401 unauthenticated in Fly's shape when the header is missing", async () => {
    const res = await get();
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="hangar"');
    expect(await res.json()).toEqual({
      error: "missing Authorization: Bearer <token> header",
      status: "unauthenticated",
    });
  });

  it.each([
    "Bearer wrong",
    "Bearer s3cret-token-and-more",
    "Bearer s3cret",
    "Basic czNjcmV0LXRva2Vu",
    "s3cret-token",
    "Bearer",
  ])("refuses %j", async (header) => {
    const res = await get(header);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "invalid bearer token", status: "unauthenticated" });
  });

  it("refuses to be set up without a token", () => {
    expect(() => bearerAuth("")).toThrow(/non-empty token/);
  });
});
