import { createLogger } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { testAuth } from "../../test/auth-fixture.js";
import type { ScalingView } from "../scaling/catalog.js";
import { createApi } from "./api.js";
import type { MachinesBackend } from "./backend.js";

const { auth: AUTH, token: TOKEN } = testAuth();
const view: ScalingView = {
  app: "web",
  panic: true,
  panic_since: "2026-12-02T10:00:00.000Z",
  decisions_total: 1,
  decisions: [],
};
const limits: number[] = [];
const api = createApi({
  // Only the scaling route is called; the machines backend is never reached.
  backend: {} as MachinesBackend,
  auth: AUTH,
  logger: createLogger("test", { level: "silent" }),
  metrics: new Registry(),
  scaling: {
    appExists: (app) => app === "web",
    scalingOf: (_app, limit) => {
      limits.push(limit ?? -1);
      return view;
    },
  },
});
const get = (path: string) =>
  Promise.resolve(api.request(path, { headers: { authorization: `Bearer ${TOKEN}` } }));

describe("GET /v1/apps/{app}/scaling", () => {
  it("answers the app's autoscaling, with 20 decisions unless asked", async () => {
    const res = await get("/v1/apps/web/scaling");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(view);
    await get("/v1/apps/web/scaling?limit=3");
    expect(limits).toEqual([20, 3]);
  });

  it("refuses an unknown app and a bad limit in Fly's error shape", async () => {
    const missing = await get("/v1/apps/nope/scaling");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: "app nope not found", status: "not_found" });
    const bad = await get("/v1/apps/web/scaling?limit=0");
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { status: string }).status).toBe("invalid_argument");
  });
});
