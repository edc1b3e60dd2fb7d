// Issue 13, acceptance 1: the tenant-isolation matrix. Two orgs with two apps each (one started
// machine per app); tokens of every kind, and bad ones. Every route of the gateway's router is called
// with every token on three targets, and each outcome is checked against a literal table:
//   2  authorized: the route's own answer (2xx, or its 400/404/412... for the harmless input sent)
//   3  403 permission_denied: the token's own org, but a caveat denies
//   4  404 "app|org|token|repository <x> not found": another org's resource, as if it did not exist
//   1  401: the token is expired, revoked or forged
// and nothing is ever a 5xx. A route of the router missing from the table fails the test.
import { createHash } from "node:crypto";
import { attenuateToken } from "@hangar/auth";
import { createLogger } from "@hangar/telemetry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApi } from "../../services/gateway/src/http/api.js";
import { parseRegistryPath } from "../../services/gateway/src/registry/paths.js";
import { helloConfig, startTestPlatform, type TestPlatform } from "../platform/harness.js";

const TOKENS = ["op", "admin", "deploy", "ro", "exec", "att", "expired", "revoked", "forged"] as const;
type TokenName = (typeof TOKENS)[number];
/** Expected classes on the token's three targets: its own app in its caveats, its own org's app outside them, another org's app. */
type Row = Record<TokenName, string>;

/**
 * One row: the six valid tokens' expectations as written; the three bad tokens are 401 on every
 * authenticated route. Tokens: op = operator; admin = org t1's admin; deploy = deploy token for t1a;
 * ro = read-only token of t1; exec = machine-exec token for t1a; att = t1's admin token attenuated
 * offline to apps=[t1b] + read-only.
 */
const row = (op: string, admin: string, deploy: string, ro: string, exec: string, att: string): Row => ({
  op,
  admin,
  deploy,
  ro,
  exec,
  att,
  expired: "111",
  revoked: "111",
  forged: "111",
});
/** Routes without authentication: every token, bad ones too, gets the route's answer. */
const PUBLIC: Row = Object.fromEntries(TOKENS.map((t) => [t, "222"])) as Row;

// The literal table: (route) x (token) -> classes on [own app in caveats, own app outside, other org's].
// For org-level routes the first two targets are the token's org (t1), the third the other org (t2).
const TABLE: Record<string, Row> = {
  "GET /health": PUBLIC,
  "GET /metrics": PUBLIC,
  //                                          op     admin  deploy ro     exec   att
  "POST /v1/orgs": row("222", "222", "333", "333", "333", "333"),
  "GET /v1/orgs": row("222", "222", "222", "222", "222", "222"),
  "GET /v1/orgs/:slug": row("222", "224", "224", "224", "334", "224"),
  "PUT /v1/orgs/:slug/limits": row("222", "334", "334", "334", "334", "334"),
  "POST /v1/tokens": row("222", "224", "334", "334", "334", "334"),
  "GET /v1/tokens": row("222", "224", "224", "224", "334", "224"),
  "DELETE /v1/tokens/:id": row("222", "224", "334", "334", "334", "334"),
  "GET /v1/auth/whoami": row("222", "222", "222", "222", "222", "222"),
  "GET /v1/audit": row("222", "224", "234", "224", "334", "234"),
  "GET /v1/apps": row("222", "224", "224", "224", "224", "224"),
  "POST /v1/apps": row("222", "224", "334", "334", "334", "334"),
  "GET /v1/apps/:app_name": row("222", "224", "234", "224", "334", "234"),
  // Deleting an app is an org's act: fresh apps of each org are the targets, outside every app caveat.
  "DELETE /v1/apps/:app_name": row("222", "224", "334", "334", "334", "334"),
  "GET /v1/apps/:app_name/machines": row("222", "224", "234", "224", "234", "234"),
  "POST /v1/apps/:app_name/machines": row("222", "224", "234", "334", "334", "334"),
  "GET /v1/apps/:app_name/machines/:machine_id": row("222", "224", "234", "224", "234", "234"),
  "POST /v1/apps/:app_name/machines/:machine_id": row("222", "224", "234", "334", "334", "334"),
  "DELETE /v1/apps/:app_name/machines/:machine_id": row("222", "224", "234", "334", "334", "334"),
  "POST /v1/apps/:app_name/machines/:machine_id/start": row("222", "224", "234", "334", "334", "334"),
  "POST /v1/apps/:app_name/machines/:machine_id/stop": row("222", "224", "234", "334", "334", "334"),
  "POST /v1/apps/:app_name/machines/:machine_id/restart": row("222", "224", "234", "334", "334", "334"),
  "POST /v1/apps/:app_name/machines/:machine_id/signal": row("222", "224", "234", "334", "334", "334"),
  "POST /v1/apps/:app_name/machines/:machine_id/suspend": row("222", "224", "234", "334", "334", "334"),
  "POST /v1/apps/:app_name/machines/:machine_id/cordon": row("222", "224", "234", "334", "334", "334"),
  "POST /v1/apps/:app_name/machines/:machine_id/uncordon": row("222", "224", "234", "334", "334", "334"),
  "GET /v1/apps/:app_name/machines/:machine_id/wait": row("222", "224", "234", "224", "234", "234"),
  "GET /v1/apps/:app_name/machines/:machine_id/events": row("222", "224", "234", "224", "234", "234"),
  "GET /v1/apps/:app_name/machines/:machine_id/lease": row("222", "224", "234", "224", "234", "234"),
  "POST /v1/apps/:app_name/machines/:machine_id/lease": row("222", "224", "234", "334", "334", "334"),
  "DELETE /v1/apps/:app_name/machines/:machine_id/lease": row("222", "224", "234", "334", "334", "334"),
  // An exec token reads what exec needs (the machines, their state and events), not their configs' history or metadata.
  "GET /v1/apps/:app_name/machines/:machine_id/versions": row("222", "224", "234", "224", "334", "234"),
  "GET /v1/apps/:app_name/machines/:machine_id/metadata": row("222", "224", "234", "224", "334", "234"),
  "POST /v1/apps/:app_name/machines/:machine_id/metadata/:key": row("222", "224", "234", "334", "334", "334"),
  "DELETE /v1/apps/:app_name/machines/:machine_id/metadata/:key": row(
    "222",
    "224",
    "234",
    "334",
    "334",
    "334",
  ),
  "POST /v1/apps/:app_name/builds": row("222", "224", "234", "334", "334", "334"),
  "GET /v1/apps/:app_name/builds": row("222", "224", "234", "224", "334", "234"),
  "GET /v1/apps/:app_name/builds/:build_id": row("222", "224", "234", "224", "334", "234"),
  "GET /v1/apps/:app_name/builds/:build_id/events": row("222", "224", "234", "224", "334", "234"),
  "POST /v1/apps/:app_name/builds/:build_id/cancel": row("222", "224", "234", "334", "334", "334"),
  "POST /v1/apps/:app_name/releases": row("222", "224", "234", "334", "334", "334"),
  "GET /v1/apps/:app_name/releases": row("222", "224", "234", "224", "334", "234"),
  "GET /v1/apps/:app_name/releases/:version": row("222", "224", "234", "224", "334", "234"),
  "PATCH /v1/apps/:app_name/releases/:version": row("222", "224", "234", "334", "334", "334"),
  "GET /v1/apps/:app_name/scaling": row("222", "224", "234", "224", "334", "234"),
  "GET /v1/apps/:app_name/secrets": row("222", "224", "234", "224", "334", "234"),
  "POST /v1/apps/:app_name/secrets": row("222", "224", "234", "334", "334", "334"),
  "DELETE /v1/apps/:app_name/secrets/:name": row("222", "224", "234", "334", "334", "334"),
  "GET /v1/orgs/:org_slug/secrets": row("222", "224", "224", "224", "334", "224"),
  "POST /v1/orgs/:org_slug/secrets": row("222", "224", "334", "334", "334", "334"),
  "DELETE /v1/orgs/:org_slug/secrets/:name": row("222", "224", "334", "334", "334", "334"),
  "GET /v1/apps/:app_name/logs": row("222", "224", "234", "224", "334", "234"),
  "GET /v1/apps/:app_name/volumes": row("222", "224", "234", "224", "334", "234"),
  "POST /v1/apps/:app_name/volumes": row("222", "224", "234", "334", "334", "334"),
  "GET /v1/apps/:app_name/volumes/:volume_id": row("222", "224", "234", "224", "334", "234"),
  "POST /v1/apps/:app_name/volumes/:volume_id": row("222", "224", "234", "334", "334", "334"),
  "DELETE /v1/apps/:app_name/volumes/:volume_id": row("222", "224", "234", "334", "334", "334"),
  "PUT /v1/apps/:app_name/volumes/:volume_id/extend": row("222", "224", "234", "334", "334", "334"),
  "GET /v1/apps/:app_name/volumes/:volume_id/snapshots": row("222", "224", "234", "224", "334", "234"),
  "POST /v1/apps/:app_name/volumes/:volume_id/snapshots": row("222", "224", "234", "334", "334", "334"),
  "POST /v1/apps/:app_name/machines/:machine_id/exec": row("222", "224", "234", "334", "234", "334"),
  "GET /v1/apps/:app_name/machines/:machine_id/ps": row("222", "224", "234", "334", "234", "334"),
  "GET /v1/apps/:app_name/machines/:machine_id/tunnel": row("222", "224", "234", "334", "234", "334"),
  "GET /v1/apps/:app_name/machines/:machine_id/console": row("222", "224", "234", "334", "234", "334"),
  "GET /v1/apps/:app_name/tunnel": row("222", "224", "234", "334", "234", "334"),
  "GET /v1/apps/:app_name/console": row("222", "224", "234", "334", "234", "334"),
  // The registry's catch-all (`ALL /v2/*` in the router), by endpoint: a repository is its app's.
  "GET /v2/": row("222", "222", "222", "222", "222", "222"),
  "GET /v2/:repo/tags/list": row("222", "224", "234", "224", "334", "234"),
  "GET /v2/:repo/manifests/latest": row("222", "224", "234", "224", "334", "234"),
  "HEAD /v2/:repo/manifests/latest": row("222", "224", "234", "224", "334", "234"),
  "PUT /v2/:repo/manifests/latest": row("222", "224", "234", "334", "334", "334"),
  "GET /v2/:repo/blobs/:digest": row("222", "224", "234", "224", "334", "234"),
  "HEAD /v2/:repo/blobs/:digest": row("222", "224", "234", "224", "334", "234"),
  "POST /v2/:repo/blobs/uploads/": row("222", "224", "234", "334", "334", "334"),
  "GET /v2/:repo/blobs/uploads/:upload": row("222", "224", "234", "224", "334", "234"),
  "PATCH /v2/:repo/blobs/uploads/:upload": row("222", "224", "234", "334", "334", "334"),
  "PUT /v2/:repo/blobs/uploads/:upload": row("222", "224", "234", "334", "334", "334"),
  "DELETE /v2/:repo/blobs/uploads/:upload": row("222", "224", "234", "334", "334", "334"),
};

/**
 * Reads and exec act on the target's started machine; every other machine route names a machine
 * that does not exist, so an authorized call changes nothing (its 404 names the machine, not the app).
 */
const onRealMachine = (method: string, pattern: string) => method === "GET" || pattern.endsWith("/exec");
const MISSING_MACHINE = "m0missing";
/** An image config pushed to every app's repository as `latest`, so registry reads (HEAD too) find something. */
const IMAGE_CONFIG = Buffer.from(
  JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }),
);
const IMAGE_CONFIG_DIGEST = `sha256:${createHash("sha256").update(IMAGE_CONFIG).digest("hex")}`;

let p: TestPlatform;
const tokens = {} as Record<TokenName, string>;
const machines: Record<string, string> = {};
/** DELETE /v1/apps and DELETE /v1/tokens destroy what they name: each cell gets its own. */
const freshApps = new Map<string, string>();
const freshTokens = new Map<string, string>();

const targetsOf = (t: TokenName): [string, string, string] =>
  t === "att" ? ["t1b", "t1a", "t2a"] : ["t1a", "t1b", "t2a"];
const orgOfTarget = (k: number) => (k < 2 ? "t1" : "t2");
const cellKey = (t: TokenName, k: number) => `${TOKENS.indexOf(t)}-${k}`;

interface Call {
  method: string;
  url: string;
  body?: string;
  headers: Record<string, string>;
}

/** The request of one cell: the route's parameters filled in for the target, with harmless input. */
function callOf(route: string, t: TokenName, k: number): Call {
  const [method, pattern] = route.split(" ") as [string, string];
  const app = (
    route === "DELETE /v1/apps/:app_name" ? freshApps.get(cellKey(t, k)) : targetsOf(t)[k]
  ) as string;
  const org = orgOfTarget(k);
  const unique = `${route.length}${cellKey(t, k)}`.replace(/[^a-z0-9]/g, "");
  let path = pattern
    .replace(":app_name", app)
    .replace(":repo", app)
    .replace(":machine_id", onRealMachine(method, pattern) ? (machines[app] as string) : MISSING_MACHINE)
    .replace(":slug", org)
    .replace(":org_slug", org)
    .replace(":id", freshTokens.get(cellKey(t, k)) ?? "")
    .replace(":build_id", "missing-build")
    .replace(":key", "matrix")
    .replace(":version", "999")
    .replace(":name", "MISSING_SECRET")
    .replace(":digest", IMAGE_CONFIG_DIGEST)
    .replace(":upload", "missing-upload")
    // No volume of that id: an authorized call is the volume's 404 (or the body's 400), and nothing changes.
    .replace(":volume_id", "vol_0000000000000000");
  const query: Record<string, string> = {
    "GET /v1/apps": `?org_slug=${org}`,
    "GET /v1/tokens": `?org=${org}`,
    "GET /v1/audit": `?app=${app}`,
    "GET /v1/apps/:app_name/logs": "?no_tail=true",
    "GET /v1/apps/:app_name/machines/:machine_id/wait": "?state=started&timeout=5",
    "GET /v1/apps/:app_name/builds/:build_id/events": "?follow=false",
    "GET /v1/apps/:app_name/machines/:machine_id/tunnel": "?port=8080",
    "GET /v1/apps/:app_name/tunnel": "?port=8080",
  };
  path += query[route] ?? "";
  const json: Record<string, unknown> = {
    "POST /v1/orgs": { slug: `o${unique}` },
    "PUT /v1/orgs/:slug/limits": { limits: {} },
    "POST /v1/tokens": { kind: "readonly", org, name: "matrix" },
    "POST /v1/apps": { app_name: `n${unique}`, org_slug: org },
    // Invalid past the authorization check: the 400 says it was let through, and nothing changes.
    "POST /v1/apps/:app_name/machines": {},
    "POST /v1/apps/:app_name/machines/:machine_id": {},
    "POST /v1/apps/:app_name/machines/:machine_id/signal": {},
    "POST /v1/apps/:app_name/machines/:machine_id/metadata/:key": { value: "matrix" },
    "POST /v1/apps/:app_name/releases": {},
    "PATCH /v1/apps/:app_name/releases/:version": {},
    "POST /v1/apps/:app_name/secrets": { values: { "1BAD": "x" } },
    "POST /v1/orgs/:org_slug/secrets": { values: { "1BAD": "x" } },
    "POST /v1/apps/:app_name/machines/:machine_id/exec": { command: ["true"] },
    "POST /v1/apps/:app_name/volumes": {},
    "POST /v1/apps/:app_name/volumes/:volume_id": {},
    "PUT /v1/apps/:app_name/volumes/:volume_id/extend": {},
  };
  const headers: Record<string, string> = { authorization: `Bearer ${tokens[t]}` };
  let body: string | undefined;
  if (route in json) {
    body = JSON.stringify(json[route]);
    headers["content-type"] = "application/json";
  } else if (route === "POST /v1/apps/:app_name/builds") {
    body = "not a tar";
    headers["content-type"] = "text/plain";
  } else if (route === "PUT /v2/:repo/manifests/latest") {
    body = "{}";
    headers["content-type"] = "application/vnd.oci.image.manifest.v1+json";
  }
  return { method, url: `${p.apiUrl}${path}`, headers, ...(body === undefined ? {} : { body }) };
}

/** The class of an answer, or why it is not one of the table's. */
async function classOf(method: string, res: Response): Promise<{ cls: string; detail: string }> {
  const text = await res.text();
  const detail = `${res.status} ${text.slice(0, 160)}`;
  if (res.status >= 500) return { cls: "5xx", detail };
  if (res.status === 401) return { cls: "1", detail };
  if (res.status === 403) return { cls: "3", detail };
  let body: { error?: string; errors?: { code?: string; message?: string }[] } = {};
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: not a refusal either.
  }
  const tenantMissing =
    /^(app|org|token) \S+ not found$/.test(body.error ?? "") ||
    (body.errors?.[0]?.code === "NAME_UNKNOWN" &&
      /^repository \S+ not found$/.test(body.errors[0].message ?? ""));
  // A HEAD answer has no body; every target's repository holds the image HEAD asks for, so a 404 is a refusal.
  if (res.status === 404 && (tenantMissing || method === "HEAD")) return { cls: "4", detail };
  return { cls: "2", detail };
}

/** Runs `fn` over `items`, `width` at a time. */
async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: width }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
    }),
  );
}

/** The router's routes, `METHOD path`, with the registry's catch-all spelled out by endpoint. */
function routerRoutes(): string[] {
  const unused = {} as never;
  const api = createApi({
    backend: unused,
    auth: { key: new Uint8Array(32), directory: unused, isRevoked: () => false },
    logger: createLogger("gateway", { level: "silent" }),
    orgs: unused,
    builds: unused,
    releases: unused,
    logs: unused,
    inspector: unused,
    tunnels: unused,
    scaling: unused,
    registry: unused,
    secrets: unused,
    volumes: unused,
    audit: { record: async () => undefined, query: async () => [] },
  });
  const routes = new Set<string>();
  for (const r of api.routes) {
    // Middlewares show up as ALL on wildcards; the registry is the one handler among them.
    if (r.method === "ALL" && r.path === "/v2/*") {
      for (const route of Object.keys(TABLE)) if (route.split(" ")[1]?.startsWith("/v2/")) routes.add(route);
    } else if (r.method !== "ALL") routes.add(`${r.method} ${r.path}`);
  }
  return [...routes];
}

beforeAll(async () => {
  p = await startTestPlatform();
  const admin = await p.api.ok<{ token: string }>("POST", "/orgs", { slug: "t1" });
  await p.api.ok("POST", "/orgs", { slug: "t2" });
  for (const app of ["t1a", "t1b", "t2a", "t2b"]) {
    await p.api.ok("POST", "/apps", { app_name: app, org_slug: app.slice(0, 2) });
  }
  await Promise.all(
    ["t1a", "t1b", "t2a", "t2b"].map(async (app) => {
      const m = await p.api.ok<{ id: string }>("POST", `/apps/${app}/machines`, { config: helloConfig() });
      await p.api.ok("GET", `/apps/${app}/machines/${m.id}/wait?state=started&timeout=60`);
      machines[app] = m.id;
    }),
  );
  for (const app of ["t1a", "t1b", "t2a", "t2b"]) await pushImage(app);
  const mint = async (body: Record<string, unknown>) =>
    (await p.api.call<{ token: string; id: string }>("POST", "/tokens", body, { token: admin.token })).body;
  tokens.op = p.token;
  tokens.admin = admin.token;
  tokens.deploy = (await mint({ kind: "deploy", app: "t1a" })).token;
  tokens.ro = (await mint({ kind: "readonly" })).token;
  tokens.exec = (await mint({ kind: "machine-exec", app: "t1a" })).token;
  tokens.att = attenuateToken(admin.token, { apps: ["t1b"], readOnly: true });
  tokens.expired = attenuateToken(admin.token, { expiresAt: Date.now() - 1000 });
  const revoked = await mint({ kind: "org", name: "to revoke" });
  expect((await p.api.call("DELETE", `/tokens/${revoked.id}`)).status).toBe(204);
  tokens.revoked = revoked.token;
  tokens.forged = forge(admin.token);
  for (const t of TOKENS) {
    for (const k of [0, 1, 2]) {
      const org = orgOfTarget(k);
      const app = `d${cellKey(t, k)}`;
      await p.api.ok("POST", "/apps", { app_name: app, org_slug: org });
      freshApps.set(cellKey(t, k), app);
      const issued = await p.api.ok<{ id: string }>("POST", "/tokens", { kind: "readonly", org });
      freshTokens.set(cellKey(t, k), issued.id);
    }
  }
}, 240_000);

afterAll(async () => {
  await p?.close();
}, 120_000);

/** Pushes IMAGE_CONFIG and a manifest naming it (no layers) to `<app>:latest`, as the operator. */
async function pushImage(app: string): Promise<void> {
  const headers = { authorization: `Bearer ${p.token}` };
  const blob = await fetch(`${p.apiUrl}/v2/${app}/blobs/uploads/?digest=${IMAGE_CONFIG_DIGEST}`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/octet-stream" },
    body: IMAGE_CONFIG,
  });
  expect(blob.status).toBe(201);
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: IMAGE_CONFIG_DIGEST,
      size: IMAGE_CONFIG.length,
    },
    layers: [],
  };
  const put = await fetch(`${p.apiUrl}/v2/${app}/manifests/latest`, {
    method: "PUT",
    headers: { ...headers, "content-type": manifest.mediaType },
    body: JSON.stringify(manifest),
  });
  expect(put.status).toBe(201);
}

/** The token with one byte of its signature flipped. */
function forge(token: string): string {
  const json = JSON.parse(Buffer.from(token.slice(4), "base64url").toString());
  const sig = Buffer.from(json.s64, "base64url");
  sig[0] = (sig[0] as number) ^ 0xff;
  return `${token.slice(0, 4)}${Buffer.from(JSON.stringify({ ...json, s64: sig.toString("base64url") })).toString("base64url")}`;
}

describe("tenant isolation", () => {
  it("every route of the router has a row, and every row a route", () => {
    const routes = routerRoutes();
    expect(routes.filter((r) => !(r in TABLE))).toEqual([]);
    expect(Object.keys(TABLE).filter((r) => !routes.includes(r))).toEqual([]);
    // The registry rows cover every kind of /v2 endpoint there is.
    const kinds = new Set(
      Object.keys(TABLE)
        .filter((r) => r.includes(" /v2/"))
        .map(
          (r) =>
            parseRegistryPath(
              (r.split(" ")[1] as string)
                .slice(3)
                .replace(":repo", "a")
                .replace(":digest", IMAGE_CONFIG_DIGEST),
            )?.kind,
        ),
    );
    expect([...kinds].sort()).toEqual(["base", "blob", "manifest", "tags", "upload", "uploads"]);
  });

  it("every (token, route, target) cell answers as the table says, and nothing is a 500", async () => {
    const cells = Object.keys(TABLE).flatMap((route) =>
      TOKENS.flatMap((t) => [0, 1, 2].map((k) => ({ route, t, k }))),
    );
    const failures: string[] = [];
    await pool(cells, 8, async ({ route, t, k }) => {
      const call = callOf(route, t, k);
      const res = await fetch(call.url, { method: call.method, headers: call.headers, body: call.body });
      const got = await classOf(call.method, res);
      const want = (TABLE[route] as Row)[t][k];
      if (got.cls !== want) {
        failures.push(`${route} as ${t} on ${targetsOf(t)[k]}: want ${want}, got ${got.cls} (${got.detail})`);
      }
    });
    process.stdout.write(`matrix: ${cells.length} cells, ${failures.length} failures\n`);
    expect(failures.sort()).toEqual([]);
  }, 300_000);

  it("a repository of no app is the platform's: the operator pushes base images there, an org's token finds nothing", async () => {
    const start = (token: string) =>
      fetch(`${p.apiUrl}/v2/library/base/blobs/uploads/`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      });
    expect((await start(tokens.op)).status).toBe(202);
    for (const t of ["admin", "deploy", "ro", "exec", "att"] as const)
      expect((await start(tokens[t])).status).toBe(404);
    expect((await start(attenuateToken(tokens.op, { readOnly: true }))).status).toBe(403);
  });

  it("a caveat naming an unknown app denies, and a forged signature is 401", async () => {
    const ghost = attenuateToken(tokens.admin, { apps: ["ghost"] });
    expect((await p.api.call("GET", "/apps/t1a", undefined, { token: ghost })).status).toBe(403);
    expect((await p.api.call("GET", "/apps/ghost", undefined, { token: ghost })).status).toBe(404);
    expect((await p.api.call("GET", "/apps?org_slug=t1", undefined, { token: ghost })).body).toEqual({
      total_apps: 0,
      apps: [],
    });
    const forged = await p.api.call<{ status: string }>("GET", "/apps/t1a", undefined, {
      token: tokens.forged,
    });
    expect(forged.status).toBe(401);
    expect(forged.body.status).toBe("unauthenticated");
  });
});
