import { describe, expect, it } from "vitest";
import { CliError } from "./cli-error.js";
import { createContext } from "./context.js";
import { runCli } from "./program.js";
import { scopeOf, tokenRequest, tokensTable } from "./tokens.js";

/** Runs the CLI in this process without any platform: only what fails before calling the API can pass. */
async function offline(args: string[]) {
  const res = { code: 0, stdout: "", stderr: "" };
  const ctx = createContext({
    env: { HANGAR_HOME: "/nonexistent/hangar-home" },
    cwd: "/",
    out: (t) => {
      res.stdout += t;
    },
    err: (t) => {
      res.stderr += t;
    },
  });
  res.code = await runCli(args, ctx);
  return res;
}

describe("tokenRequest", () => {
  it("builds the body of each kind, with only the flags given", () => {
    expect(tokenRequest("org", {})).toEqual({ kind: "org" });
    expect(tokenRequest("org", { org: "acme", expiry: "720h", name: "ci" })).toEqual({
      kind: "org",
      org: "acme",
      expiry: "720h",
      name: "ci",
    });
    expect(tokenRequest("deploy", { app: "web" })).toEqual({ kind: "deploy", app: "web" });
    expect(tokenRequest("machine-exec", { app: "web", org: "acme" })).toEqual({
      kind: "machine-exec",
      org: "acme",
      app: "web",
    });
    expect(tokenRequest("readonly", { org: "acme" })).toEqual({ kind: "readonly", org: "acme" });
    expect(tokenRequest("readonly", { app: "web" })).toEqual({ kind: "readonly", app: "web" });
  });

  it("refuses a deploy or machine-exec token without an app, and an org token with one", () => {
    expect(() => tokenRequest("deploy", {})).toThrow(CliError);
    expect(() => tokenRequest("machine-exec", { org: "acme" })).toThrow(/for one app/);
    expect(() => tokenRequest("org", { app: "web" })).toThrow(/every app of its org/);
  });
});

describe("hangar tokens create, before any call", () => {
  it("says how to name the app of a deploy token, and exits 1", async () => {
    const res = await offline(["tokens", "create", "deploy"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      "Error: a deploy token is for one app\nname it: hangar tokens create deploy -a <app>\n",
    );
  });

  it("refuses an unknown kind or a bad expiry as usage errors", async () => {
    const kind = await offline(["tokens", "create", "admin"]);
    expect(kind.code).toBe(2);
    expect(kind.stderr).toMatch(/Allowed choices are org, deploy, readonly, machine-exec/);
    const expiry = await offline(["tokens", "create", "org", "--expiry", "a month"]);
    expect(expiry.code).toBe(2);
    expect(expiry.stderr).toMatch(/expected a duration such as "720h"/);
  });
});

describe("token views", () => {
  it("says what a token covers", () => {
    expect(scopeOf({ org: "acme", apps: null })).toBe("acme");
    expect(scopeOf({ org: "acme", apps: ["web", "api"] })).toBe("acme: web, api");
    expect(scopeOf({ org: null, apps: null })).toBe("every org");
  });

  it("lists tokens with their scope, expiry and revocation", () => {
    const table = tokensTable([
      {
        id: "t1",
        kind: "deploy",
        name: "ci",
        org: "acme",
        apps: ["web"],
        expires_at: "2027-01-01T00:00:00.000Z",
        created_at: "2026-12-01T00:00:00.000Z",
        revoked_at: null,
      },
      {
        id: "t2",
        kind: "org",
        name: "",
        org: "acme",
        apps: null,
        expires_at: null,
        created_at: "2026-12-02T00:00:00.000Z",
        revoked_at: "2026-12-03T00:00:00.000Z",
      },
    ]);
    expect(table.split("\n")[0]).toMatch(/^ID\s+KIND\s+NAME\s+SCOPE\s+EXPIRES\s+CREATED\s+STATUS$/);
    expect(table).toMatch(/t1\s+deploy\s+ci\s+acme: web\s+2027-01-01T00:00:00.000Z/);
    expect(table).toMatch(/t2\s+org\s+acme\s+never\s+2026-12-02T00:00:00.000Z\s+revoked 2026-12-03/);
  });
});
