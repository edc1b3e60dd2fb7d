import type { EventFeed } from "@hangar/event-feed";
import type { UpstreamRegistries } from "@hangar/oci";
import type { HealthReport } from "@hangar/service";
import { createLogger, type Logger } from "@hangar/telemetry";
import { Hono } from "hono";
import { Registry } from "prom-client";
import { auditCalls } from "../audit/middleware.js";
import { auditRoutes } from "../audit/routes.js";
import type { AuditLog } from "../audit/trail.js";
import { dashboardRoutes } from "../dashboard/routes.js";
import { DashboardSessions } from "../dashboard/sessions.js";
import { type EventRoutesOptions, eventRoutes } from "../events/routes.js";
import type { MachineInspector } from "../exec/inspector.js";
import { execRoutes } from "../exec/routes.js";
import type { IdempotencyStore } from "../idempotency/kv-idempotency.js";
import type { LogsReader } from "../logs/app-logs.js";
import { logRoutes } from "../logs/routes.js";
import type { Orgs } from "../orgs/orgs.js";
import type { PostgresBackend } from "../postgres/api.js";
import { postgresRoutes } from "../postgres/routes.js";
import {
  type BlobQuota,
  type RegistryStore,
  registryRoutes,
  type UploadSessionOptions,
} from "../registry/mod.js";
import type { TunnelOpener } from "../tunnel/host-tunnels.js";
import { tunnelRoutes } from "../tunnel/routes.js";
import type { VolumesBackend } from "../volumes/api.js";
import { volumeRoutes } from "../volumes/routes.js";
import type { WebhooksBackend } from "../webhooks/api.js";
import { webhookRoutes } from "../webhooks/routes.js";
import { accessLog } from "./access-log.js";
import { appRoutes } from "./apps.js";
import { type TokenAuth, tokenAuth } from "./auth.js";
import type { MachinesBackend } from "./backend.js";
import { jsonBodyLimit } from "./body-limit.js";
import { buildRoutes } from "./builds.js";
import type { BuildsBackend } from "./builds-backend.js";
import type { ApiEnv } from "./context.js";
import { type EdgeBundleStore, edgeBundleRoutes } from "./edge-bundles.js";
import { errorHandler, notFound } from "./error-handler.js";
import { type FreshReadsSource, freshReads } from "./fresh-reads.js";
import { httpMetrics } from "./http-metrics.js";
import { idempotency } from "./idempotency.js";
import { leaseRoutes } from "./leases.js";
import { machineActionRoutes } from "./machine-actions.js";
import { machineRoutes } from "./machines.js";
import { metadataRoutes } from "./metadata.js";
import { orgRoutes } from "./orgs.js";
import { type RateLimitSettings, rateLimit } from "./rate-limit.js";
import { releaseRoutes } from "./releases.js";
import type { ReleasesBackend } from "./releases-backend.js";
import { requestId } from "./request-id.js";
import { type ScalingReader, scalingRoutes } from "./scaling.js";
import { secretRoutes } from "./secrets.js";
import type { SecretsBackend } from "./secrets-backend.js";
import { tracing } from "./tracing.js";

export interface ApiDeps {
  backend: MachinesBackend;
  /** Verifies the token every `/v1` and `/v2` request must carry, and knows the orgs it is checked against. */
  auth: TokenAuth;
  /** Serves `/v1/orgs`, `/v1/tokens` and `/v1/auth/whoami` when given. */
  orgs?: Orgs;
  /** Defaults to a "gateway" logger at LOG_LEVEL. */
  logger?: Logger;
  /** Registry served on `/metrics` and holding the HTTP metrics; defaults to a new one. */
  metrics?: Registry;
  /** Serves `/v1/apps/{app}/builds` when given. */
  builds?: BuildsBackend;
  /** Serves `/v1/apps/{app}/releases` when given. */
  releases?: ReleasesBackend;
  /** Serves `POST /v1/apps/{app}/edge/bundles` (edge apps' code, stored by digest) when given. */
  edgeBundles?: { store: EdgeBundleStore; appExists(app: string): boolean };
  /** Serves `/v1/apps/{app}/logs` (the machines' output, recent then live) when given. */
  logs?: LogsReader;
  /** Serves `POST .../machines/{id}/exec` and `GET .../machines/{id}/ps` (through the machine's host) when given. */
  inspector?: MachineInspector;
  /** Serves the tunnels into machines (`.../tunnel`, `.../console`, HTTP upgrades) when given. */
  tunnels?: TunnelOpener;
  /** Serves `/v1/apps/{app}/scaling` (the autoscaler's decisions) when given. */
  scaling?: ScalingReader;
  /** Serves `/v1/apps/{app}/secrets` and `/v1/orgs/{org}/secrets` (write-only values) when given. */
  secrets?: SecretsBackend;
  /** Hangar's image registry (an ImageRegistry); when given, the OCI Distribution API is served on `/v2`. */
  registry?: RegistryStore;
  /** Where `/v2` blob upload sessions keep their bytes; defaults to a folder under the OS temp dir. */
  registryUploadDir?: string;
  /** `/v2` upload limits: how long an untouched upload lives, how large a blob may be. */
  registryUploads?: UploadSessionOptions;
  /** `/v2` blob bytes each org may store (what it pushed so far, and the limit); without it, no quota. */
  registryQuota?: BlobQuota;
  /** The gateway's readiness (runService's), served on `/health` (503 when not ok); without it, always ok. */
  health?: () => HealthReport;
  /** HANGAR_DIR_IMAGE_ROOTS: the folders `dir:` images may run from; none (the default) refuses them. */
  dirImageRoots?: readonly string[];
  /** HANGAR_REGISTRY_UPSTREAMS: refs of these registries are pulled from there, never an app's image. */
  upstreams?: UpstreamRegistries;
  /** The audit trail: when given, successful mutating calls on `/v1` and `/v2` are recorded and `GET /v1/audit` serves them. */
  audit?: AuditLog;
  /** Idempotency keys of the mutations (http/idempotency.ts), shared by the replicas; without it the header is ignored. */
  idempotency?: IdempotencyStore;
  /** Rate limits per org and action on `/v1` (http/rate-limit.ts); without them, none. */
  rateLimits?: RateLimitSettings;
  /** Serves Fly's Volumes API on `/v1/apps/{app}/volumes` when given. */
  volumes?: VolumesBackend;
  /** Serves `/v1/postgres` (clusters of the postgres manager) when given with `secrets` (attach sets one). */
  postgres?: PostgresBackend;
  /** Serves the event feed as Server-Sent Events (`/v1/apps/{app}/events/stream`, `/v1/events/stream`) when given. */
  events?: { feed: EventFeed } & EventRoutesOptions;
  /** Serves `/v1/webhooks` (the webhooks service's) when given. */
  webhooks?: WebhooksBackend;
  /** Read-your-writes across replicas: on a miss, wait briefly for an app or machine another replica wrote. */
  freshReads?: FreshReadsSource;
  /** Serves the web dashboard on `/dashboard` when given (dashboard/routes.ts); sessions default to a new in-memory store. */
  dashboard?: { sessions?: DashboardSessions };
}

/** The feed's position now, as an event id: after its last message. */
const feedPositionOf = (feed: EventFeed) => () => String(feed.lastSeq);

/**
 * The Fly-compatible Machines API: `/v1/...` behind a macaroon token (Bearer or FlyV1) whose caveats
 * every route checks (authz.ts), plus `/health` and `/metrics` without, and with a registry, the OCI
 * Distribution API on `/v2` (same tokens, also as the Basic password).
 */
export function createApi(deps: ApiDeps): Hono<ApiEnv> {
  const logger = deps.logger ?? createLogger("gateway");
  const registry = deps.metrics ?? new Registry();
  const api = new Hono<ApiEnv>();
  api.onError(errorHandler(logger));
  api.notFound(notFound);
  api.use(requestId(), tracing(), httpMetrics(registry), accessLog(logger));

  api.get("/health", (c) => {
    const report = deps.health?.() ?? { ok: true };
    return c.json({ ...report, status: report.ok ? "ok" : "unavailable" }, report.ok ? 200 : 503);
  });
  api.get("/metrics", async (c) =>
    c.body(await registry.metrics(), 200, { "content-type": registry.contentType }),
  );

  api.use("/v1/*", tokenAuth(deps.auth));
  api.use("/v1/*", jsonBodyLimit());
  if (deps.rateLimits) api.use("/v1/*", rateLimit(deps.rateLimits));
  if (deps.freshReads) api.use("/v1/apps/*", freshReads(deps.freshReads));
  // After the rate limits, so a flood of keyed requests spends the org's budget before any KV write
  // (a replay is charged like the call it replays); before the audit, so a replay is not recorded again.
  if (deps.idempotency) api.use("/v1/*", idempotency(deps.idempotency, logger));
  if (deps.audit) {
    for (const path of ["/v1/*", "/v2/*"]) api.use(path, auditCalls(deps.audit, logger));
    api.route("/v1", auditRoutes(deps.audit));
  }
  if (deps.orgs) api.route("/v1", orgRoutes(deps.orgs));
  api.route("/v1", appRoutes(deps.backend));
  api.route("/v1", machineRoutes(deps.backend, deps.dirImageRoots, deps.registry, deps.upstreams));
  for (const routes of [machineActionRoutes, leaseRoutes, metadataRoutes]) {
    api.route("/v1", routes(deps.backend));
  }
  if (deps.registry) {
    api.route(
      "/v2",
      registryRoutes({
        store: deps.registry,
        auth: deps.auth,
        logger,
        uploadDir: deps.registryUploadDir,
        uploads: deps.registryUploads,
        quota: deps.registryQuota,
      }),
    );
  }
  if (deps.builds) api.route("/v1", buildRoutes(deps.builds));
  if (deps.releases) api.route("/v1", releaseRoutes(deps.releases, deps.registry, deps.upstreams));
  if (deps.edgeBundles)
    api.route("/v1", edgeBundleRoutes(deps.edgeBundles.store, deps.edgeBundles.appExists));
  if (deps.scaling) api.route("/v1", scalingRoutes(deps.scaling));
  if (deps.secrets) api.route("/v1", secretRoutes(deps.secrets));
  if (deps.logs) api.route("/v1", logRoutes(deps.logs));
  if (deps.events) api.route("/v1", eventRoutes(deps.events.feed, deps.events));
  if (deps.inspector) api.route("/v1", execRoutes(deps.inspector));
  if (deps.tunnels) api.route("/v1", tunnelRoutes(deps.tunnels));
  if (deps.volumes) api.route("/v1", volumeRoutes(deps.volumes));
  if (deps.postgres && deps.secrets) api.route("/v1", postgresRoutes(deps.postgres, deps.secrets));
  if (deps.webhooks) api.route("/v1", webhookRoutes(deps.webhooks));
  if (deps.dashboard) {
    api.route(
      "/dashboard",
      dashboardRoutes({
        auth: deps.auth,
        sessions: deps.dashboard.sessions ?? new DashboardSessions(),
        api,
        served: {
          orgs: deps.orgs !== undefined,
          releases: deps.releases !== undefined,
          scaling: deps.scaling !== undefined,
          volumes: deps.volumes !== undefined,
          postgres: deps.postgres !== undefined && deps.secrets !== undefined,
          logs: deps.logs !== undefined,
          events: deps.events !== undefined,
        },
        ...(deps.events ? { feedPosition: feedPositionOf(deps.events.feed) } : {}),
      }),
    );
  }
  return api;
}
