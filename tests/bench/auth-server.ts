// The gateway's HTTP stack twice, for `pnpm bench auth`, in a process of its own so that the load
// generator does not share its CPU: the same middlewares (request id, tracing, metrics, access log)
// and the same machine routes (with their authorization checks) over the same in-memory machine,
// once behind macaroon verification (the gateway's tokenAuth) and once behind a static bearer token
// compared by digest (the gateway's check before macaroons). Prints
// {"plain":<url>,"authorized":<url>,"path":<GET machine path>,"plainToken":..,"authorizedToken":..}
// and serves until killed.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { mintToken, type Principal } from "@hangar/auth";
import { createLogger } from "@hangar/telemetry";
import { Hono, type MiddlewareHandler } from "hono";
import { Registry } from "prom-client";
import { accessLog } from "../../services/gateway/src/http/access-log.js";
import { type TokenAuth, tokenAuth } from "../../services/gateway/src/http/auth.js";
import type { OrgDirectory } from "../../services/gateway/src/http/authz.js";
import type { MachinesBackend, MachineView } from "../../services/gateway/src/http/backend.js";
import type { ApiEnv } from "../../services/gateway/src/http/context.js";
import { errorHandler } from "../../services/gateway/src/http/error-handler.js";
import { ApiError } from "../../services/gateway/src/http/errors.js";
import { httpMetrics } from "../../services/gateway/src/http/http-metrics.js";
import { machineRoutes } from "../../services/gateway/src/http/machines.js";
import { requestId } from "../../services/gateway/src/http/request-id.js";
import { startApiServer } from "../../services/gateway/src/http/server.js";
import { tracing } from "../../services/gateway/src/http/tracing.js";

const BENCH_APP = "web";
const BENCH_MACHINE = "m-bench";

const directory: OrgDirectory = {
  orgOf: (app) => (app === BENCH_APP ? "acme" : undefined),
  exists: (org) => org === "acme",
  limitsOf: () => ({}),
};
const now = new Date().toISOString();
const machine: MachineView = {
  id: BENCH_MACHINE,
  name: "bench",
  state: "started",
  region: "local",
  instance_id: "i-bench",
  private_ip: "10.0.0.2",
  config: { image: "registry.local/web:v1" } as MachineView["config"],
  image_ref: { registry: "registry.local", repository: "web", tag: "v1", digest: "" },
  created_at: now,
  updated_at: now,
  events: [],
  checks: [],
  host_status: "ok",
};
// Only GET machine is served: the bench sends nothing else.
const backend = { getMachine: async () => machine } as unknown as MachinesBackend;

/** The old static check: one bearer token, compared by digest; its holder is every org's operator. */
function staticToken(token: string): MiddlewareHandler<ApiEnv> {
  const digest = (t: string) => createHash("sha256").update(t).digest();
  const expected = digest(token);
  const operator: Principal = {
    tokenId: "static",
    kind: "operator",
    org: undefined,
    apps: undefined,
    readOnly: false,
    execOnly: false,
    expiresAt: undefined,
  };
  return async (c, next) => {
    const given = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "")?.[1];
    if (given === undefined || !timingSafeEqual(digest(given), expected))
      throw ApiError.of("unauthenticated", "invalid bearer token");
    c.set("principal", operator);
    c.set("orgs", directory);
    await next();
  };
}

/** The gateway's middlewares and machine routes behind `auth`. */
function stack(auth: MiddlewareHandler<ApiEnv>): Hono<ApiEnv> {
  const logger = createLogger("gateway", { level: "warn" });
  const api = new Hono<ApiEnv>();
  api.onError(errorHandler(logger));
  api.use(requestId(), tracing(), httpMetrics(new Registry()), accessLog(logger));
  api.use("/v1/*", auth);
  api.route("/v1", machineRoutes(backend));
  return api;
}

const key = new Uint8Array(randomBytes(32));
const tokens: TokenAuth = { key, directory, isRevoked: () => false };
// What CI holds: a deploy token for the app, attenuated by nothing more.
const authorizedToken = mintToken(key, { id: "tok_bench", kind: "deploy", org: "acme", apps: [BENCH_APP] });
const plainToken = randomBytes(24).toString("base64url");
const [plain, authorized] = await Promise.all([
  startApiServer(stack(staticToken(plainToken)), { port: 0 }),
  startApiServer(stack(tokenAuth(tokens)), { port: 0 }),
]);
const path = `/v1/apps/${BENCH_APP}/machines/${BENCH_MACHINE}`;
process.stdout.write(
  `${JSON.stringify({ plain: plain.url, authorized: authorized.url, path, plainToken, authorizedToken })}\n`,
);
