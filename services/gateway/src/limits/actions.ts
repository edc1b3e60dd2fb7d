import type { Limit } from "./token-bucket.js";

/** The actions the Machines API rate-limits per org, as Fly's users plan for them. */
export const RATE_ACTIONS = [
  "machine_create",
  "machine_start",
  "machine_get",
  "app_create",
  "volume",
  "postgres",
] as const;

export type RateAction = (typeof RATE_ACTIONS)[number];

/** Calls per period (a minute unless HANGAR_GATEWAY_RATE_LIMIT_PERIOD says otherwise) of each action. */
export const DEFAULT_RATE_LIMITS: Readonly<Record<RateAction, number>> = {
  machine_create: 10,
  machine_start: 30,
  machine_get: 120,
  app_create: 5,
  volume: 15,
  postgres: 10,
};

/** Whether an action only reads: those fail open when the limits' store is unreachable. */
export const READ_ACTIONS: ReadonlySet<RateAction> = new Set(["machine_get"]);

/** A rate-limited route: its method and Hono pattern under `/v1`. */
export interface RateLimitedRoute {
  method: string;
  path: string;
  action: RateAction;
  /**
   * Who pays when the path names no app: "token" charges the calling token's own org (a token of no
   * org, the operator's, is not charged); otherwise the org the body names (a new app's).
   */
  payer?: "token";
}

const MACHINE = "/v1/apps/:app_name/machines/:machine_id";
const VOLUME = "/v1/apps/:app_name/volumes/:volume_id";
const CLUSTER = "/v1/postgres/:app_name";

/**
 * The one table of which route spends which action's budget. A test checks that every pattern here is
 * a route of the API.
 */
export const RATE_LIMITED_ROUTES: readonly RateLimitedRoute[] = [
  { method: "POST", path: "/v1/apps", action: "app_create" },
  { method: "DELETE", path: "/v1/apps/:app_name", action: "app_create" },
  // Each new org comes with a fresh budget and blob quota: creating them is charged like apps, to the
  // creator's org, so a tenant cannot mint orgs at will.
  { method: "POST", path: "/v1/orgs", action: "app_create", payer: "token" },
  { method: "POST", path: "/v1/apps/:app_name/machines", action: "machine_create" },
  { method: "DELETE", path: MACHINE, action: "machine_create" },
  { method: "POST", path: `${MACHINE}/start`, action: "machine_start" },
  { method: "POST", path: `${MACHINE}/stop`, action: "machine_start" },
  { method: "POST", path: `${MACHINE}/restart`, action: "machine_start" },
  { method: "POST", path: `${MACHINE}/suspend`, action: "machine_start" },
  // A metadata change is a small change of a running machine's config, charged like its other state changes.
  { method: "POST", path: `${MACHINE}/metadata/:key`, action: "machine_start" },
  { method: "DELETE", path: `${MACHINE}/metadata/:key`, action: "machine_start" },
  { method: "GET", path: "/v1/apps/:app_name/machines", action: "machine_get" },
  { method: "GET", path: MACHINE, action: "machine_get" },
  { method: "GET", path: `${MACHINE}/versions`, action: "machine_get" },
  { method: "GET", path: `${MACHINE}/metadata`, action: "machine_get" },
  // Every change of a volume makes or moves disk on a host: one budget for all of them.
  { method: "POST", path: "/v1/apps/:app_name/volumes", action: "volume" },
  { method: "POST", path: VOLUME, action: "volume" },
  { method: "DELETE", path: VOLUME, action: "volume" },
  { method: "PUT", path: `${VOLUME}/extend`, action: "volume" },
  { method: "POST", path: `${VOLUME}/snapshots`, action: "volume" },
  // Every change of a Postgres cluster moves machines, volumes or a database: one budget for them. A
  // create is charged to the org its body names (as a new app), the others to the cluster's.
  { method: "POST", path: "/v1/postgres", action: "postgres" },
  { method: "DELETE", path: CLUSTER, action: "postgres" },
  { method: "POST", path: `${CLUSTER}/attach`, action: "postgres" },
  { method: "POST", path: `${CLUSTER}/detach`, action: "postgres" },
  { method: "POST", path: `${CLUSTER}/failover`, action: "postgres" },
  { method: "POST", path: `${CLUSTER}/import`, action: "postgres" },
  { method: "POST", path: `${CLUSTER}/backups`, action: "postgres" },
  { method: "POST", path: `${CLUSTER}/backups/restore`, action: "postgres" },
];

/** A request matched to the table: its action and the path's `app_name`, when the pattern has one. */
export interface RateLimitedCall {
  action: RateAction;
  app: string | undefined;
  /** Set when the calling token's org pays (see RateLimitedRoute). */
  payer?: "token";
}

const compiled = RATE_LIMITED_ROUTES.map((route) => ({
  ...route,
  // A parameter is one path segment, as in Hono.
  regex: new RegExp(`^${route.path.replace(/:(\w+)/g, "(?<$1>[^/]+)")}/?$`),
}));

/** The action a request spends, or undefined for a route that is not rate-limited. */
export function rateLimitedCall(method: string, path: string): RateLimitedCall | undefined {
  // Hono answers HEAD with the GET handler, so a HEAD spends the GET's budget.
  const as = method === "HEAD" ? "GET" : method;
  for (const route of compiled) {
    if (route.method !== as) continue;
    const m = route.regex.exec(path);
    if (m) {
      const app = m.groups?.app_name && decodeSegment(m.groups.app_name);
      return route.payer ? { action: route.action, app, payer: route.payer } : { action: route.action, app };
    }
  }
  return undefined;
}

// A malformed escape is left as it is: the route's own validation refuses the name.
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * Parses HANGAR_GATEWAY_RATE_LIMITS: comma-separated `<action>=<calls per period>` pairs over the
 * defaults ("machine_create=600,machine_get=5000"). Throws RangeError naming what is wrong.
 */
export function parseRateLimits(text: string): Record<RateAction, number> {
  const limits = { ...DEFAULT_RATE_LIMITS };
  for (const pair of text.split(",").map((p) => p.trim())) {
    if (pair === "") continue;
    const [name, value, ...rest] = pair.split("=").map((p) => p.trim());
    if (!RATE_ACTIONS.includes(name as RateAction)) {
      throw new RangeError(`unknown rate-limit action "${name}"; the actions are ${RATE_ACTIONS.join(", ")}`);
    }
    const count = Number(value);
    if (rest.length > 0 || value === undefined || !Number.isInteger(count) || count < 1) {
      throw new RangeError(`"${pair}": a limit is <action>=<whole number of calls, at least 1>`);
    }
    limits[name as RateAction] = count;
  }
  return limits;
}

/** The limit of `action` for an org: its own override when it has one, else the platform's. */
export function limitOf(
  action: RateAction,
  platform: Readonly<Record<RateAction, number>>,
  orgLimits: Partial<Record<string, number>>,
  periodMs: number,
): Limit {
  const own = orgLimits[action];
  return { count: own !== undefined && own > 0 ? own : platform[action], periodMs };
}
