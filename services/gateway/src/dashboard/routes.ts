import type { PgClusterView } from "@hangar/service";
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { authenticate, type TokenAuth } from "../http/auth.js";
import type { AppListView, AppView, MachineView } from "../http/backend.js";
import { ApiError } from "../http/errors.js";
import type { ReleaseView } from "../http/releases-backend.js";
import type { ScalingView } from "../scaling/catalog.js";
import type { VolumeView } from "../volumes/api.js";
import { DASHBOARD_CSS, DASHBOARD_JS } from "./assets.js";
import type { Html } from "./html.js";
import {
  appPage,
  errorPage,
  homePage,
  loginPage,
  machineRows,
  type OrgOverview,
  releaseRows,
  scalingRows,
  volumeRows,
} from "./pages.js";
import type { DashboardSession, DashboardSessions } from "./sessions.js";

/** The session cookie: a random id, scoped to /dashboard, never readable by scripts. */
export const SESSION_COOKIE = "hangar_session";

/**
 * script-src 'self': the one script is /dashboard/static/dashboard.js, no inline script or handler;
 * connect-src 'self' for its EventSources and fetches; nothing may frame the dashboard.
 */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** The API routes the gateway serves besides apps and machines, so the dashboard asks only for those. */
export interface ServedApis {
  orgs: boolean;
  releases: boolean;
  scaling: boolean;
  volumes: boolean;
  postgres: boolean;
  logs: boolean;
  events: boolean;
}

export interface DashboardDeps {
  auth: TokenAuth;
  sessions: DashboardSessions;
  /** The gateway's own API: every read is a call to it with the session's token, so the token's caveats apply as they do to any client. */
  api: { fetch(request: Request): Response | Promise<Response> };
  served: ServedApis;
  /**
   * The event feed's position now (an event id). The app page is read after it and the page's script
   * follows the feed from it, so nothing that happens between the read and the stream's start is missed.
   */
  feedPosition?: () => string;
}

type DashboardEnv = { Variables: { session: DashboardSession; sessionId: string } };
type DashboardContext = Context<DashboardEnv>;

/** What the API answered instead of the data: its status and message. */
class ApiCallError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiCallError";
  }
}

const PARTS = ["machines", "releases", "scaling", "volumes"] as const;
type Part = (typeof PARTS)[number];

// A form with a token is small; anything larger is not a login.
const LOGIN_BODY_LIMIT = 64 * 1024;

/** Whether the request came over https (directly, or through a proxy that says so). */
function isHttps(c: Context): boolean {
  return new URL(c.req.url).protocol === "https:" || c.req.header("x-forwarded-proto") === "https";
}

/**
 * CSRF check of the dashboard's POSTs, with SameSite=Strict behind it: the browser's Origin must be
 * this gateway's (or, without Origin, Sec-Fetch-Site must say same-origin).
 */
function sameOrigin(c: Context): boolean {
  const origin = c.req.header("origin");
  if (origin === undefined || origin === "null") return c.req.header("sec-fetch-site") === "same-origin";
  try {
    return new URL(origin).host === (c.req.header("host") ?? new URL(c.req.url).host);
  } catch {
    return false;
  }
}

function htmlResponse(c: Context, page: Html, status: ContentfulStatusCode = 200): Response {
  return c.html(page.value, status);
}

function refuseCrossSite(c: Context): Response {
  return htmlResponse(c, errorPage(403, "cross-site request refused: use the dashboard's own form"), 403);
}

/**
 * The web dashboard at /dashboard: a login that exchanges an API token for a session cookie, the orgs
 * and apps the token covers, and each app's machines (live), releases, autoscaler decisions, volumes,
 * Postgres clusters and logs. Server-rendered HTML with everything escaped, one script, a strict CSP.
 */
export function dashboardRoutes(deps: DashboardDeps): Hono<DashboardEnv> {
  const { sessions, served } = deps;
  const dash = new Hono<DashboardEnv>();

  dash.use("*", async (c, next) => {
    await next();
    c.res.headers.set("content-security-policy", DASHBOARD_CSP);
    c.res.headers.set("x-content-type-options", "nosniff");
    c.res.headers.set("referrer-policy", "no-referrer");
    if (!c.res.headers.has("cache-control")) c.res.headers.set("cache-control", "no-store");
  });

  dash.get("/static/dashboard.js", (c) =>
    c.body(DASHBOARD_JS, 200, {
      "content-type": "text/javascript; charset=utf-8",
      "cache-control": "no-cache",
    }),
  );
  dash.get("/static/dashboard.css", (c) =>
    c.body(DASHBOARD_CSS, 200, { "content-type": "text/css; charset=utf-8", "cache-control": "no-cache" }),
  );

  dash.get("/login", (c) => {
    if (sessions.get(getCookie(c, SESSION_COOKIE))) return c.redirect("/dashboard", 303);
    return htmlResponse(c, loginPage());
  });

  dash.post(
    "/login",
    bodyLimit({
      maxSize: LOGIN_BODY_LIMIT,
      onError: (c) => htmlResponse(c, loginPage("That is too large to be a token."), 413),
    }),
    async (c) => {
      if (!sameOrigin(c)) return refuseCrossSite(c);
      const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
      const token = typeof form.token === "string" ? form.token.trim() : "";
      let refusal: string | undefined;
      let principal: ReturnType<typeof authenticate> | undefined;
      if (token === "") refusal = "Paste a token to log in.";
      else if (/\s/.test(token)) refusal = "That is not a token: a token has no spaces or line breaks.";
      else {
        try {
          principal = authenticate(deps.auth, `Bearer ${token}`, false);
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          refusal = `Not logged in: ${err.message}.`;
        }
      }
      if (principal === undefined) return htmlResponse(c, loginPage(refusal), 401);
      const id = sessions.create(token, principal);
      setCookie(c, SESSION_COOKIE, id, {
        path: "/dashboard",
        httpOnly: true,
        sameSite: "Strict",
        secure: isHttps(c),
      });
      return c.redirect("/dashboard", 303);
    },
  );

  dash.post("/logout", (c) => {
    if (!sameOrigin(c)) return refuseCrossSite(c);
    sessions.delete(getCookie(c, SESSION_COOKIE));
    deleteCookie(c, SESSION_COOKIE, { path: "/dashboard", secure: isHttps(c) });
    return c.redirect("/dashboard/login", 303);
  });

  // Everything else needs a session: pages send the browser to the login, the script's calls get a 401.
  const requireSession: MiddlewareHandler<DashboardEnv> = async (c, next) => {
    const id = getCookie(c, SESSION_COOKIE);
    const session = sessions.get(id);
    if (session === undefined || id === undefined) return signedOut(c);
    c.set("session", session);
    c.set("sessionId", id);
    await next();
  };
  dash.use("/", requireSession);
  dash.use("/apps/*", requireSession);

  /** The API's answer to a GET with the session's token; its error as an ApiCallError. */
  async function call<T>(c: DashboardContext, path: string): Promise<T> {
    const res = await deps.api.fetch(
      new Request(new URL(path, "http://gateway.internal"), {
        headers: { authorization: `Bearer ${c.get("session").token}`, accept: "application/json" },
        signal: c.req.raw.signal,
      }),
    );
    if (res.ok) return (await res.json()) as T;
    const body = (await res.json().catch(() => ({}))) as { error?: unknown };
    throw new ApiCallError(res.status, typeof body.error === "string" ? body.error : res.statusText);
  }

  /** Runs a page's reads; an API refusal becomes the page of its status, a token no longer accepted the login. */
  async function page(c: DashboardContext, render: () => Promise<Response>): Promise<Response> {
    try {
      return await render();
    } catch (err) {
      if (!(err instanceof ApiCallError)) throw err;
      if (err.status === 401) {
        sessions.delete(c.get("sessionId"));
        return signedOut(c);
      }
      return htmlResponse(c, errorPage(err.status, err.message), err.status as ContentfulStatusCode);
    }
  }

  const appPath = (app: string) => `/v1/apps/${encodeURIComponent(app)}`;

  async function orgOverview(c: DashboardContext, slug: string, name: string): Promise<OrgOverview> {
    const q = `?org_slug=${encodeURIComponent(slug)}`;
    const [apps, clusters] = await Promise.all([
      call<AppListView>(c, `/v1/apps${q}`),
      served.postgres ? call<{ clusters: PgClusterView[] }>(c, `/v1/postgres${q}`) : { clusters: [] },
    ]);
    return { slug, name, apps: apps.apps, clusters: clusters.clusters };
  }

  dash.get("/", (c) =>
    page(c, async () => {
      // Without the org directory's routes, the token's own org (an operator's: "personal", as /v1/apps defaults).
      const own = c.get("session").org ?? "personal";
      const orgs = served.orgs
        ? (await call<{ orgs: { slug: string; name: string }[] }>(c, "/v1/orgs")).orgs
        : [{ slug: own, name: own }];
      const overviews = await Promise.all(orgs.map((o) => orgOverview(c, o.slug, o.name)));
      return htmlResponse(c, homePage(overviews));
    }),
  );

  const emptyScaling = (app: string): ScalingView => ({
    app,
    panic: false,
    panic_since: null,
    decisions_total: 0,
    decisions: [],
  });

  async function readPart(c: DashboardContext, app: string, part: Part): Promise<Html> {
    const base = appPath(app);
    switch (part) {
      case "machines":
        return machineRows(await call<MachineView[]>(c, `${base}/machines`));
      case "releases":
        return releaseRows(served.releases ? await call<ReleaseView[]>(c, `${base}/releases`) : []);
      case "scaling":
        return scalingRows(
          served.scaling ? await call<ScalingView>(c, `${base}/scaling?limit=20`) : emptyScaling(app),
        );
      case "volumes":
        return volumeRows(served.volumes ? await call<VolumeView[]>(c, `${base}/volumes`) : []);
    }
  }

  dash.get("/apps/:app", (c) =>
    page(c, async () => {
      const name = c.req.param("app");
      const base = appPath(name);
      const since = deps.feedPosition?.();
      // The app first: another org's app, or none, is a 404 before anything else is read.
      const app = await call<AppView>(c, base);
      const org = `?org_slug=${encodeURIComponent(app.organization.slug)}`;
      const [machines, releases, scaling, volumes, clusters] = await Promise.all([
        call<MachineView[]>(c, `${base}/machines`),
        served.releases ? call<ReleaseView[]>(c, `${base}/releases`) : [],
        served.scaling ? call<ScalingView>(c, `${base}/scaling?limit=20`) : emptyScaling(name),
        served.volumes ? call<VolumeView[]>(c, `${base}/volumes`) : [],
        served.postgres ? call<{ clusters: PgClusterView[] }>(c, `/v1/postgres${org}`) : { clusters: [] },
      ]);
      const attached = clusters.clusters.filter((cl) => cl.attachments.some((a) => a.app === name));
      return htmlResponse(
        c,
        appPage({ app, machines, releases, scaling, volumes, clusters: attached, since }),
      );
    }),
  );

  dash.get("/apps/:app/parts/:part", (c) =>
    page(c, async () => {
      const part = c.req.param("part");
      if (!(PARTS as readonly string[]).includes(part)) {
        return htmlResponse(c, errorPage(404, `no part ${part}: one of ${PARTS.join(", ")}`), 404);
      }
      return htmlResponse(c, await readPart(c, c.req.param("app"), part as Part));
    }),
  );

  /** Passes one of the API's event streams through, with the session's token and the browser's resume id. */
  async function stream(c: DashboardContext, path: string): Promise<Response> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${c.get("session").token}`,
      accept: "text/event-stream",
    };
    // EventSource sends the header on a reconnect; the page's first connection names its position in the query.
    const resume = c.req.header("last-event-id") ?? c.req.query("last_event_id");
    if (resume !== undefined) headers["last-event-id"] = resume;
    const res = await deps.api.fetch(
      new Request(new URL(path, "http://gateway.internal"), { headers, signal: c.req.raw.signal }),
    );
    if (!res.ok || res.body === null) {
      if (res.status === 401) sessions.delete(c.get("sessionId"));
      return c.body(await res.text(), res.status as ContentfulStatusCode, {
        "content-type": res.headers.get("content-type") ?? "application/json",
      });
    }
    return c.body(res.body, 200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  }

  dash.get("/apps/:app/events", (c) => {
    if (!served.events)
      return c.json({ error: "this gateway serves no event stream", status: "not_found" }, 404);
    return stream(c, `${appPath(c.req.param("app"))}/events/stream`);
  });
  dash.get("/apps/:app/logs", (c) => {
    if (!served.logs) return c.json({ error: "this gateway serves no logs", status: "not_found" }, 404);
    return stream(c, `${appPath(c.req.param("app"))}/logs?limit=50`);
  });

  return dash;
}

/** No session (or no longer a valid one): pages go to the login, the script's requests get a 401. */
function signedOut(c: Context): Response {
  if (getCookie(c, SESSION_COOKIE) !== undefined) deleteCookie(c, SESSION_COOKIE, { path: "/dashboard" });
  const wantsPage = (c.req.header("accept") ?? "").includes("text/html");
  if (wantsPage || c.req.path === "/dashboard" || /^\/dashboard\/apps\/[^/]+\/?$/.test(c.req.path)) {
    return c.redirect("/dashboard/login", 303);
  }
  return c.json(
    { error: "not logged in to the dashboard: log in at /dashboard/login", status: "unauthenticated" },
    401,
  );
}
