import { randomBytes } from "node:crypto";
import { mintToken } from "@hangar/auth";
import { createLogger } from "@hangar/telemetry";
import { beforeEach, describe, expect, it } from "vitest";
import { createApi } from "../http/api.js";
import type { TokenAuth } from "../http/auth.js";
import type { AppListView, AppView, MachinesBackend, MachineView } from "../http/backend.js";
import { ApiError } from "../http/errors.js";
import type { ScalingView } from "../scaling/catalog.js";
import { DASHBOARD_CSP, SESSION_COOKIE } from "./routes.js";
import { DashboardSessions } from "./sessions.js";

// Two orgs: "acme" holds web, "other" holds rival. The token under test is acme's.
const ORG_OF: Record<string, string> = { web: "acme", rival: "other" };
const XSS = "<script>alert(1)</script>";
const key = new Uint8Array(randomBytes(32));
const acmeToken = mintToken(key, { id: "tok_acme", kind: "org", org: "acme" });
const ORIGIN = "http://localhost";

function machine(id: string, name: string): MachineView {
  return {
    id,
    name,
    state: "started",
    region: "local",
    instance_id: "i1",
    private_ip: "fdaa::1",
    config: { image: "hello:latest" },
    image_ref: { registry: "", repository: "hello", tag: "latest", digest: "" },
    created_at: "2026-12-05T10:00:00Z",
    updated_at: "2026-12-05T10:00:01Z",
    events: [],
    checks: [],
    host_status: "ok",
  } as unknown as MachineView;
}

// Only what the dashboard reads; the API's own routes check the token before the backend is asked.
const backend = {
  async listApps(org: string): Promise<AppListView> {
    const apps = Object.keys(ORG_OF)
      .filter((a) => ORG_OF[a] === org)
      .map((name) => ({ id: `app_${name}`, name, machine_count: 1, network: "default" }));
    return { total_apps: apps.length, apps };
  },
  async getApp(app: string): Promise<AppView> {
    const org = ORG_OF[app];
    if (org === undefined) throw ApiError.of("not_found", `app ${app} not found`);
    return { id: `app_${app}`, name: app, organization: { name: org, slug: org }, status: "deployed" };
  },
  async listMachines(app: string): Promise<MachineView[]> {
    return [machine("3d8d9e0b2c4f18", app === "web" ? XSS : "rival-m")];
  },
} as unknown as MachinesBackend;

const scaling: ScalingView = {
  app: "web",
  panic: false,
  panic_since: null,
  decisions_total: 1,
  decisions: [
    {
      id: "d1",
      decided_at: "2026-12-05T10:00:02Z",
      current: 2,
      desired: 1,
      reason: `scale down: mean 0 connections over 6 s ${XSS}`,
      inputs: {},
      actions: [
        { kind: "stop", machine_id: "3d8d9e0b2c4f18", region: "local", outcome: "done", message: "" },
      ],
    },
  ],
};

let revoked: Set<string>;
let sessions: DashboardSessions;
let now: number;

function dashboard() {
  const auth: TokenAuth = {
    key,
    directory: {
      orgOf: (app) => ORG_OF[app],
      exists: (org) => Object.values(ORG_OF).includes(org),
      limitsOf: () => ({}),
    },
    isRevoked: (id) => revoked.has(id),
  };
  return createApi({
    backend,
    auth,
    logger: createLogger("gateway-test", { level: "silent" }),
    scaling: { scalingOf: () => scaling, appExists: (a) => ORG_OF[a] !== undefined },
    logs: {
      appExists: (a) => ORG_OF[a] !== undefined,
      machineExists: () => true,
      async *logs(app) {
        yield {
          ts: "2026-12-05T10:00:03.000Z",
          seq: 1,
          app,
          machine_id: "3d8d9e0b2c4f18",
          region: "local",
          stream: "stdout",
          line: XSS,
        };
      },
    },
    dashboard: { sessions },
  });
}

function loginForm(token: string, headers: Record<string, string> = { origin: ORIGIN }) {
  return {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams({ token }).toString(),
  };
}

/** Logs in with `token` and returns the cookie header to send with later requests. */
async function login(api: ReturnType<typeof dashboard>, token = acmeToken): Promise<string> {
  const res = await api.request("/dashboard/login", loginForm(token));
  expect(res.status).toBe(303);
  const cookie = res.headers.get("set-cookie") ?? "";
  const id = new RegExp(`${SESSION_COOKIE}=([^;]+)`).exec(cookie)?.[1];
  expect(id).toBeDefined();
  return `${SESSION_COOKIE}=${id}`;
}

beforeEach(() => {
  revoked = new Set();
  now = Date.parse("2026-12-05T12:00:00Z");
  sessions = new DashboardSessions({ ttlMs: 3_600_000, now: () => now });
});

describe("dashboard login", () => {
  it("serves the login form under a strict CSP, with no inline script", async () => {
    const res = await dashboard().request("/dashboard/login");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).toContain("script-src 'self'");
    const page = await res.text();
    expect(page).toContain('<form method="post" action="/dashboard/login">');
    // Every <script> names its source: nothing inline for the CSP to refuse.
    expect(page.match(/<script[^>]*>/g)).toEqual(['<script src="/dashboard/static/dashboard.js" defer>']);
  });

  it("exchanges a valid token for an httpOnly, SameSite=Strict session cookie that is not the token", async () => {
    const res = await dashboard().request("/dashboard/login", loginForm(acmeToken));
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/dashboard");
    const cookie = res.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{43};`));
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).toContain("Path=/dashboard");
    expect(cookie).not.toContain("Secure");
    expect(cookie).not.toContain(acmeToken.slice(0, 20));
    expect(sessions.size).toBe(1);
  });

  it("marks the cookie Secure when the dashboard is served over https", async () => {
    const res = await dashboard().request(
      "https://hangar.example/dashboard/login",
      loginForm(acmeToken, { origin: "https://hangar.example", host: "hangar.example" }),
    );
    expect(res.status).toBe(303);
    expect(res.headers.get("set-cookie")).toContain("Secure");
  });

  it("refuses a forged, malformed, empty or revoked token: the form again with the reason, 401, no cookie", async () => {
    const forged = mintToken(new Uint8Array(randomBytes(32)), { id: "tok_acme", kind: "org", org: "acme" });
    revoked.add("tok_gone");
    const gone = mintToken(key, { id: "tok_gone", kind: "org", org: "acme" });
    const cases: [string, RegExp][] = [
      [forged, /invalid token/],
      ["not-a-token", /malformed token/],
      ["", /Paste a token/],
      ["two words", /no spaces/],
      [gone, /was revoked/],
    ];
    for (const [token, reason] of cases) {
      const res = await dashboard().request("/dashboard/login", loginForm(token));
      expect(res.status, token).toBe(401);
      expect(res.headers.get("set-cookie"), token).toBeNull();
      const page = await res.text();
      expect(page, token).toMatch(reason);
      expect(page).toContain('action="/dashboard/login"');
    }
    expect(sessions.size).toBe(0);
  });

  it("refuses a login posted from another site (Origin check behind SameSite=Strict)", async () => {
    const api = dashboard();
    const cross = await api.request(
      "/dashboard/login",
      loginForm(acmeToken, { origin: "https://evil.example" }),
    );
    expect(cross.status).toBe(403);
    expect(cross.headers.get("set-cookie")).toBeNull();
    const none = await api.request("/dashboard/login", loginForm(acmeToken, {}));
    expect(none.status).toBe(403);
    const fetchMeta = await api.request(
      "/dashboard/login",
      loginForm(acmeToken, { "sec-fetch-site": "same-origin" }),
    );
    expect(fetchMeta.status).toBe(303);
    expect(sessions.size).toBe(1);
  });

  it("logs out: the session ends, its cookie no longer opens a page, and a cross-site logout is refused", async () => {
    const api = dashboard();
    const cookie = await login(api);
    const cross = await api.request("/dashboard/logout", {
      method: "POST",
      headers: { cookie, origin: "https://evil.example" },
    });
    expect(cross.status).toBe(403);
    expect((await api.request("/dashboard", { headers: { cookie } })).status).toBe(200);
    const out = await api.request("/dashboard/logout", {
      method: "POST",
      headers: { cookie, origin: ORIGIN },
    });
    expect(out.status).toBe(303);
    expect(out.headers.get("location")).toBe("/dashboard/login");
    expect(out.headers.get("set-cookie")).toMatch(new RegExp(`^${SESSION_COOKIE}=;.*Max-Age=0`));
    const after = await api.request("/dashboard", { headers: { cookie } });
    expect(after.status).toBe(303);
    expect(after.headers.get("location")).toBe("/dashboard/login");
  });
});

describe("dashboard pages", () => {
  it("sends a browser without a session to the login; the script's calls get a 401", async () => {
    const api = dashboard();
    for (const path of ["/dashboard", "/dashboard/apps/web"]) {
      const res = await api.request(path, { headers: { accept: "text/html" } });
      expect(res.status, path).toBe(303);
      expect(res.headers.get("location"), path).toBe("/dashboard/login");
    }
    const forgedCookie = `${SESSION_COOKIE}=${"A".repeat(43)}`;
    const part = await api.request("/dashboard/apps/web/parts/machines", {
      headers: { cookie: forgedCookie },
    });
    expect(part.status).toBe(401);
    expect(await part.json()).toMatchObject({ status: "unauthenticated" });
    const events = await api.request("/dashboard/apps/web/events", {
      headers: { accept: "text/event-stream" },
    });
    expect(events.status).toBe(401);
  });

  it("lists the token's org and its apps, never another org's", async () => {
    const api = dashboard();
    const cookie = await login(api);
    const res = await api.request("/dashboard", { headers: { cookie } });
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain('data-org="acme"');
    expect(page).toContain('<a href="/dashboard/apps/web">web</a>');
    expect(page).not.toContain("rival");
  });

  it("answers another org's app as a 404, exactly like an app that does not exist", async () => {
    const api = dashboard();
    const cookie = await login(api);
    for (const app of ["rival", "nope"]) {
      const res = await api.request(`/dashboard/apps/${app}`, { headers: { cookie } });
      expect(res.status, app).toBe(404);
      const page = await res.text();
      expect(page).toContain(`app ${app} not found`);
      expect(page).not.toContain("rival-m");
      const part = await api.request(`/dashboard/apps/${app}/parts/machines`, { headers: { cookie } });
      expect(part.status, app).toBe(404);
    }
  });

  it("shows an app's machines and the autoscaler's reasons, escaping every value", async () => {
    const api = dashboard();
    const cookie = await login(api);
    const res = await api.request("/dashboard/apps/web", { headers: { cookie } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toBe(DASHBOARD_CSP);
    const page = await res.text();
    expect(page).toContain('<main data-app="web">');
    expect(page).toContain('<tr data-machine-id="3d8d9e0b2c4f18">');
    expect(page).toContain('<td class="state state-started">started</td>');
    expect(page).toContain("scale down: mean 0 connections over 6 s");
    expect(page).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(page).not.toContain(XSS);
    const part = await api.request("/dashboard/apps/web/parts/scaling", { headers: { cookie } });
    expect(part.status).toBe(200);
    const decisions = await part.text();
    expect(decisions).toContain("2 → 1");
    expect(decisions).not.toContain(XSS);
    const unknown = await api.request("/dashboard/apps/web/parts/secrets", { headers: { cookie } });
    expect(unknown.status).toBe(404);
  });

  it("ends the session when its token is revoked, and when the session expires", async () => {
    const api = dashboard();
    const cookie = await login(api);
    revoked.add("tok_acme");
    const res = await api.request("/dashboard/apps/web", { headers: { cookie } });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/dashboard/login");
    expect(sessions.size).toBe(0);

    revoked.clear();
    const again = await login(api);
    now += 3_600_000;
    const expired = await api.request("/dashboard", { headers: { cookie: again } });
    expect(expired.status).toBe(303);
  });

  it("passes the app's logs through as Server-Sent Events, for the session's token only", async () => {
    const api = dashboard();
    const cookie = await login(api);
    const res = await api.request("/dashboard/apps/web/logs", { headers: { cookie } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const body = await res.text();
    expect(body).toContain("id: 3d8d9e0b2c4f18:1\nevent: log\n");
    // The line reaches the browser as JSON, which the script puts into the page as text.
    expect(body).toContain(JSON.stringify(XSS));
    const rival = await api.request("/dashboard/apps/rival/logs", { headers: { cookie } });
    expect(rival.status).toBe(404);
    expect(await rival.json()).toMatchObject({ status: "not_found", error: "app rival not found" });
  });

  it("serves the script and style sheet without a session", async () => {
    const api = dashboard();
    const js = await api.request("/dashboard/static/dashboard.js");
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toContain("text/javascript");
    expect(await js.text()).toContain('new EventSource(base + "/events" + (since');
    const css = await api.request("/dashboard/static/dashboard.css");
    expect(css.headers.get("content-type")).toContain("text/css");
  });
});
