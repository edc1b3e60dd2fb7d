import { createLogger } from "@hangar/telemetry";
import { describe, expect, it } from "vitest";
import { createApi } from "../http/api.js";
import { AUDITED_ROUTES, fieldOf, MUTATING_METHODS, registryCall } from "./actions.js";
import type { AuditLog } from "./trail.js";

// Every optional part of the API, so every route is registered; none is called.
const unused = {} as never;
const audit: AuditLog = { record: async () => undefined, query: async () => [] };
const api = createApi({
  backend: unused,
  auth: unused,
  logger: createLogger("gateway", { level: "silent" }),
  builds: unused,
  releases: unused,
  logs: unused,
  inspector: unused,
  tunnels: unused,
  scaling: unused,
  registry: unused,
  orgs: unused,
  secrets: unused,
  volumes: unused,
  postgres: unused,
  webhooks: unused,
  audit,
});

describe("AUDITED_ROUTES", () => {
  it("names every mutating route of the router", () => {
    const missing = api.routes
      .filter((r) => MUTATING_METHODS.has(r.method) && r.path !== "/v2/*")
      .map((r) => `${r.method} ${r.path}`)
      .filter((key) => !(key in AUDITED_ROUTES));
    expect(missing).toEqual([]);
  });

  it("names only routes the router has", () => {
    const routes = new Set(api.routes.map((r) => `${r.method} ${r.path}`));
    expect(Object.keys(AUDITED_ROUTES).filter((key) => !routes.has(key))).toEqual([]);
  });

  it("names each action once per resource and verb, as <resource>.<verb>", () => {
    for (const route of Object.values(AUDITED_ROUTES)) expect(route.action).toMatch(/^[a-z_]+\.[a-z_]+$/);
  });
});

describe("registryCall", () => {
  it("audits a manifest push under the app of the repository's first component", () => {
    expect(registryCall("PUT", "/v2/web/manifests/v1")).toEqual({
      action: "registry.push",
      target: "web:v1",
      app: "web",
    });
    expect(registryCall("PUT", "/v2/web/cache/manifests/latest")).toMatchObject({ app: "web" });
  });

  it("leaves blob uploads and reads out: they are steps of a push", () => {
    expect(registryCall("POST", "/v2/web/blobs/uploads/")).toBeUndefined();
    expect(registryCall("PUT", "/v2/web/blobs/uploads/abc")).toBeUndefined();
    expect(registryCall("GET", "/v2/web/manifests/v1")).toBeUndefined();
  });
});

describe("fieldOf", () => {
  it("reads a dotted path as a string, and nothing else", () => {
    const json = { id: "m1", version: 3, organization: { slug: "acme" }, list: [1] };
    expect(fieldOf(json, "id")).toBe("m1");
    expect(fieldOf(json, "version")).toBe("3");
    expect(fieldOf(json, "organization.slug")).toBe("acme");
    expect(fieldOf(json, "organization")).toBe("");
    expect(fieldOf(json, "missing.deeper")).toBe("");
    expect(fieldOf(null, "id")).toBe("");
  });
});
