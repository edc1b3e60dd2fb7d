import type { Principal } from "@hangar/auth";
import { createLogger } from "@hangar/telemetry";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { type Access, authorizeApp, authorizeOrg, type OrgDirectory } from "./authz.js";
import type { ApiEnv } from "./context.js";
import { errorHandler } from "./error-handler.js";

const directory: OrgDirectory = {
  orgOf: (app) => ({ web: "acme", api: "acme", shop: "rival" })[app],
  exists: (org) => org === "acme" || org === "rival",
  limitsOf: () => ({}),
};

const principal = (o: Partial<Principal>): Principal => ({
  tokenId: "t",
  kind: "org",
  org: "acme",
  apps: undefined,
  readOnly: false,
  execOnly: false,
  expiresAt: undefined,
  ...o,
});

/** The status `p` gets for `access` to app `app` (or org `org`) on a request to `path`. */
async function status(p: Principal, target: { app: string } | { org: string }, access: Access, path = "/x") {
  const app = new Hono<ApiEnv>()
    .use(async (c, next) => {
      c.set("principal", p);
      c.set("orgs", directory);
      await next();
    })
    .get("*", (c) => {
      if ("app" in target) authorizeApp(c, target.app, access);
      else authorizeOrg(c, target.org, access);
      return c.text("ok");
    })
    .onError(errorHandler(createLogger("test", { level: "silent" })));
  const res = await app.request(path);
  return {
    status: res.status,
    body: res.status === 200 ? "ok" : ((await res.json()) as { error: string }).error,
  };
}

describe("authorizeApp", () => {
  it("answers another org's app and a missing app alike: 404 app <x> not found", async () => {
    const admin = principal({});
    expect(await status(admin, { app: "shop" }, "read")).toEqual({ status: 404, body: "app shop not found" });
    expect(await status(admin, { app: "nope" }, "read")).toEqual({ status: 404, body: "app nope not found" });
    expect(
      (await status(principal({ kind: "operator", org: undefined }), { app: "shop" }, "write")).status,
    ).toBe(200);
  });

  it("refuses the own org's apps outside the caveats with 403", async () => {
    const deploy = principal({ kind: "deploy", apps: new Set(["web"]) });
    expect((await status(deploy, { app: "web" }, "write")).status).toBe(200);
    expect((await status(deploy, { app: "api" }, "read")).status).toBe(403);
    const ro = principal({ readOnly: true });
    expect((await status(ro, { app: "web" }, "read")).status).toBe(200);
    expect((await status(ro, { app: "web" }, "write")).status).toBe(403);
    expect((await status(ro, { app: "web" }, "exec")).status).toBe(403);
  });

  it("lets a machine-exec token exec, and GET the app's machines, nothing else", async () => {
    const exec = principal({ kind: "machine-exec", execOnly: true, apps: new Set(["web"]) });
    expect((await status(exec, { app: "web" }, "exec")).status).toBe(200);
    expect((await status(exec, { app: "web" }, "read", "/v1/apps/web/machines")).status).toBe(200);
    expect((await status(exec, { app: "web" }, "read", "/v1/apps/web/machines/m1/ps")).status).toBe(200);
    expect((await status(exec, { app: "web" }, "read", "/v1/apps/web/releases")).status).toBe(403);
    expect((await status(exec, { app: "web" }, "write", "/v1/apps/web/machines")).status).toBe(403);
  });
});

describe("authorizeOrg", () => {
  it("404s other and missing orgs, 403s app-scoped writes, lets app-scoped tokens read", async () => {
    const admin = principal({});
    expect((await status(admin, { org: "acme" }, "write")).status).toBe(200);
    expect(await status(admin, { org: "rival" }, "read")).toEqual({
      status: 404,
      body: "org rival not found",
    });
    expect((await status(admin, { org: "ghost" }, "read")).status).toBe(404);
    const deploy = principal({ kind: "deploy", apps: new Set(["web"]) });
    expect((await status(deploy, { org: "acme" }, "read")).status).toBe(200);
    expect((await status(deploy, { org: "acme" }, "write")).status).toBe(403);
    expect((await status(principal({ readOnly: true }), { org: "acme" }, "write")).status).toBe(403);
  });
});
