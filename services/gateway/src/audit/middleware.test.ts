import type { Principal } from "@hangar/auth";
import type { AuditEntry } from "@hangar/domain";
import { createLogger } from "@hangar/telemetry";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { OrgDirectory } from "../http/authz.js";
import type { ApiEnv } from "../http/context.js";
import { errorHandler } from "../http/error-handler.js";
import { ApiError } from "../http/errors.js";
import { auditCalls } from "./middleware.js";
import type { AuditLog } from "./trail.js";

const logger = createLogger("gateway", { level: "silent" });
const principal: Principal = {
  tokenId: "tok-deploy",
  kind: "deploy",
  org: "acme",
  apps: new Set(["web"]),
  readOnly: false,
  execOnly: false,
  expiresAt: undefined,
};
const operator: Principal = {
  ...principal,
  tokenId: "tok-op",
  kind: "operator",
  org: undefined,
  apps: undefined,
};
const appOrgs = new Map<string, string>();
const orgs: OrgDirectory = {
  orgOf: (app) => appOrgs.get(app),
  exists: (org) => org === "acme",
  limitsOf: () => ({}),
};

/** An API shaped like createApi's (routes mounted under /v1 and /v2) whose calls are recorded in memory. */
function auditedApi(as: Principal = principal): { api: Hono<ApiEnv>; entries: AuditEntry[] } {
  appOrgs.clear();
  appOrgs.set("web", "acme");
  const entries: AuditEntry[] = [];
  const log: AuditLog = {
    record: async (e) => {
      entries.push(e);
    },
    query: async () => [],
  };
  const v1 = new Hono<ApiEnv>()
    .post("/apps/:app_name/machines", (c) => c.json({ id: "m-new", state: "created" }))
    .post("/apps/:app_name/machines/:machine_id/start", (c) => c.json({ previous_state: "stopped" }))
    .post("/apps/:app_name/machines/:machine_id/stop", () => {
      throw ApiError.of("permission_denied", "token is read-only");
    })
    .get("/apps/:app_name/machines/:machine_id", (c) => c.json({ id: c.req.param("machine_id") }))
    .get("/apps/:app_name/machines/:machine_id/console", (c) => c.body(null, 200))
    .delete("/apps/:app_name", (c) => {
      appOrgs.delete(c.req.param("app_name"));
      return c.body(null, 202);
    });
  const v2 = new Hono().all("*", (c) => c.body(null, c.req.method === "PUT" ? 201 : 202));
  const api = new Hono<ApiEnv>();
  api.onError(errorHandler(logger));
  api.use(async (c, next) => {
    c.set("requestId", "req-1");
    c.set("principal", as);
    c.set("orgs", orgs);
    await next();
  });
  for (const path of ["/v1/*", "/v2/*"]) api.use(path, auditCalls(log, logger));
  api.route("/v1", v1);
  api.route("/v2", v2);
  return { api, entries };
}

describe("auditCalls", () => {
  it("records a create with the id its answer names, and an action by route pattern", async () => {
    const { api, entries } = auditedApi();
    expect((await api.request("/v1/apps/web/machines", { method: "POST" })).status).toBe(200);
    expect((await api.request("/v1/apps/web/machines/m-1/start", { method: "POST" })).status).toBe(200);
    expect(entries).toMatchObject([
      {
        tokenId: "tok-deploy",
        tokenKind: "deploy",
        action: "machine.create",
        target: "m-new",
        org: "acme",
        app: "web",
        requestId: "req-1",
        status: 200,
        method: "POST",
        path: "/v1/apps/web/machines",
      },
      { action: "machine.start", target: "m-1", org: "acme", app: "web" },
    ]);
  });

  it("records nothing for a refused call or a read", async () => {
    const { api, entries } = auditedApi();
    expect((await api.request("/v1/apps/web/machines/m-1/stop", { method: "POST" })).status).toBe(403);
    expect((await api.request("/v1/apps/web/machines/m-1")).status).toBe(200);
    expect(entries).toEqual([]);
  });

  it("records a console opened by HEAD, which Hono answers with the GET handler, as the GET's action", async () => {
    const { api, entries } = auditedApi();
    expect((await api.request("/v1/apps/web/machines/m-1/console", { method: "HEAD" })).status).toBe(200);
    expect((await api.request("/v1/apps/web/machines/m-1", { method: "HEAD" })).status).toBe(200);
    expect(entries).toMatchObject([
      { action: "console.open", target: "m-1", app: "web", org: "acme", method: "HEAD" },
    ]);
  });

  it("records an app's deletion under the org the app was in, which the directory forgets", async () => {
    const { api, entries } = auditedApi(operator);
    expect((await api.request("/v1/apps/web", { method: "DELETE" })).status).toBe(202);
    expect(entries).toMatchObject([
      { action: "app.delete", target: "web", app: "web", org: "acme", tokenId: "tok-op" },
    ]);
  });

  it("records a registry push, not the uploads that lead to it", async () => {
    const { api, entries } = auditedApi();
    await api.request("/v2/web/blobs/uploads/", { method: "POST" });
    await api.request("/v2/web/manifests/v3", { method: "PUT" });
    expect(entries).toMatchObject([{ action: "registry.push", target: "web:v3", app: "web", org: "acme" }]);
  });
});
