import { Hono } from "hono";
import { Registry } from "prom-client";
import { expect, it } from "vitest";
import { httpMetrics } from "./http-metrics.js";

function appWith(registry: Registry) {
  return new Hono()
    .use(httpMetrics(registry))
    .get("/v1/apps/:app_name", (c) => c.json({}))
    .post("/v1/apps", (c) => c.json({ error: "bad" }, 400));
}

it("counts requests by method, route pattern and status", async () => {
  const registry = new Registry();
  const app = appWith(registry);
  await app.request("/v1/apps/web");
  await app.request("/v1/apps/api");
  await app.request("/v1/apps", { method: "POST" });

  const text = await registry.metrics();
  expect(text).toContain(
    'hangar_gateway_http_request_duration_seconds_count{method="GET",route="/v1/apps/:app_name",status="200"} 2',
  );
  expect(text).toContain(
    'hangar_gateway_http_request_duration_seconds_count{method="POST",route="/v1/apps",status="400"} 1',
  );
  expect(text).not.toContain("/v1/apps/web");
});

it("shares one histogram between apps on the same registry", async () => {
  const registry = new Registry();
  await appWith(registry).request("/v1/apps/web");
  await appWith(registry).request("/v1/apps/web");
  expect(await registry.metrics()).toContain(
    'hangar_gateway_http_request_duration_seconds_count{method="GET",route="/v1/apps/:app_name",status="200"} 2',
  );
});
