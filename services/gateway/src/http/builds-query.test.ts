import { createLogger } from "@hangar/telemetry";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { BUILD_SECRETS_HEADER, buildOptions } from "./builds-query.js";
import type { ApiEnv } from "./context.js";
import { errorHandler } from "./error-handler.js";

function app(): Hono<ApiEnv> {
  const a = new Hono<ApiEnv>();
  a.onError(errorHandler(createLogger("builds-query-test", { level: "silent" })));
  a.post("/builds", (c) => c.json(buildOptions(c).secrets ?? null));
  return a;
}

const post = (header?: string) =>
  app().request("/builds", {
    method: "POST",
    headers: header === undefined ? {} : { [BUILD_SECRETS_HEADER]: header },
  });
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64");

describe("build secrets header", () => {
  it("reads base64 JSON of id to value, and none when absent", async () => {
    expect(await (await post(b64({ npmrc: "//r/:_authToken=x", "a.b-c_d": "" }))).json()).toEqual({
      npmrc: "//r/:_authToken=x",
      "a.b-c_d": "",
    });
    expect(await (await post()).json()).toBeNull();
  });

  it("refuses anything else with 400 invalid_argument, never 500", async () => {
    for (const bad of [
      "not base64 json",
      b64(["x"]),
      b64({}),
      b64({ "bad id": "x" }),
      b64({ a: 1 }),
      b64(null),
    ]) {
      const res = await post(bad);
      expect(res.status, bad).toBe(400);
      const body = (await res.json()) as { error: string; status: string };
      expect(body.status).toBe("invalid_argument");
      expect(body.error).toMatch(/hangar-build-secrets/);
    }
  });
});
