import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import {
  appsStream,
  auditStream,
  buildsStream,
  hostsStream,
  machinesStream,
  orgsStream,
  releasesStream,
  scalingStream,
  secretsStream,
  volumesStream,
} from "@hangar/domain";
import { EventFeed, ensureEventsStream, runRelayUnderLease } from "@hangar/event-feed";
import { BlobStore, ImageRegistry, parseUpstreams } from "@hangar/oci";
import { masterKeysFromConfig } from "@hangar/secrets";
import { runService, VolumesView } from "@hangar/service";
import { jetstreamManager } from "@nats-io/jetstream";
import { AuditTrail } from "./audit/trail.js";
import { StreamBuildsBackend } from "./builds/backend.js";
import { BuildCatalog } from "./builds/catalog.js";
import { BuildContexts } from "./builds/contexts.js";
import { config } from "./config.js";
import { EdgeBundles } from "./edge/bundles.js";
import { HostInspector } from "./exec/inspector.js";
import { createApi, startApiServer } from "./http/mod.js";
import { KvIdempotency } from "./idempotency/kv-idempotency.js";
import { KvRateLimiter } from "./limits/kv-rate-limiter.js";
import { AppLogs } from "./logs/app-logs.js";
import { StreamBackend } from "./machines/backend.js";
import { Catalog } from "./machines/catalog.js";
import { MachineCommands } from "./machines/commands.js";
import { serveWakes } from "./machines/wake.js";
import { Orgs } from "./orgs/orgs.js";
import { NatsPostgresBackend } from "./postgres/backend.js";
import { KvBlobUsage } from "./registry/mod.js";
import { StreamReleasesBackend } from "./releases/backend.js";
import { ReleaseCatalog } from "./releases/catalog.js";
import { ScalingCatalog } from "./scaling/catalog.js";
import { StreamSecretsBackend } from "./secrets/backend.js";
import { HostTunnels } from "./tunnel/host-tunnels.js";
import { StreamVolumesBackend } from "./volumes/backend.js";
import { NatsWebhooksBackend } from "./webhooks/backend.js";

await runService({
  name: "gateway",
  config,
  streams: [
    appsStream,
    machinesStream,
    hostsStream,
    buildsStream,
    releasesStream,
    scalingStream,
    auditStream,
    secretsStream,
    orgsStream,
    volumesStream,
  ],
  async start({ nc, store, logger, registry, config, readiness }) {
    const catalog = await Catalog.start(store);
    const volumesView = await VolumesView.start(store);
    const volumes = new StreamVolumesBackend(nc, volumesView, config.HANGAR_REGION);
    const commands = new MachineCommands(nc, store, catalog, config.HANGAR_REGION, volumes);
    // The proxies' autostart: the gateway owns the machine commands, so it records their starts.
    const wakes = serveWakes(nc, store, { onInternalError: (err) => logger.error({ err }, "wake failed") });
    const builds = await BuildCatalog.start(store);
    const releases = await ReleaseCatalog.start(store);
    const scaling = await ScalingCatalog.start(store);
    const audit = await AuditTrail.start(store);
    const masterKeys = masterKeysFromConfig(config);
    const secrets = await StreamSecretsBackend.start(store, masterKeys, logger);
    const orgs = await Orgs.start(store, catalog.apps, config.HANGAR_GATEWAY_TOKEN_KEY);
    // The public event feed (docs/events.md): the relay of the gateway holding the events-relay
    // lease copies the aggregate streams into EVENTS, and one live tail of EVENTS serves every SSE
    // client of this gateway.
    const jsm = await jetstreamManager(nc);
    await ensureEventsStream(jsm, { replicas: config.HANGAR_STREAM_REPLICAS });
    const relay = await runRelayUnderLease(nc, jsm, {
      holder: `gateway-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
      replicas: config.HANGAR_STREAM_REPLICAS,
      onError: (err) => logger.debug({ err }, "events relay starts over"),
    });
    const events = await EventFeed.start({
      nc,
      resolver: {
        // A destroyed app keeps its org, so its last events still reach that org's subscribers.
        orgOfApp: (a) => {
          const state = catalog.apps.get(a);
          return state && state.status !== "absent" ? state.orgSlug : undefined;
        },
      },
      onError: (err) => logger.warn({ err }, "event feed"),
    });
    const appExists = (name: string) => catalog.app(name) !== undefined;
    const edgeBundles = await EdgeBundles.open(nc, {
      replicas: config.HANGAR_STREAM_REPLICAS,
      maxBytes: config.HANGAR_EDGE_BUNDLES_MAX_BYTES,
    });
    const blobs = await BlobStore.open(nc, {
      replicas: config.HANGAR_GATEWAY_BLOB_REPLICAS ?? config.HANGAR_STREAM_REPLICAS,
    });
    const app = createApi({
      backend: new StreamBackend(catalog, commands),
      freshReads: catalog.freshReads(store),
      auth: {
        key: config.HANGAR_GATEWAY_TOKEN_KEY,
        directory: orgs,
        isRevoked: (id) => orgs.isRevoked(id),
      },
      orgs,
      logger,
      metrics: registry,
      builds: new StreamBuildsBackend({
        store,
        catalog: builds,
        contexts: await BuildContexts.open(nc, { replicas: config.HANGAR_STREAM_REPLICAS }),
        appExists,
        maxContextBytes: config.HANGAR_GATEWAY_MAX_CONTEXT_MB * 2 ** 20,
        ...(masterKeys ? { keys: masterKeys } : {}),
      }),
      releases: new StreamReleasesBackend({ store, catalog: releases, builds, appExists, edgeBundles }),
      edgeBundles: { store: edgeBundles, appExists },
      scaling: { scalingOf: (a, limit) => scaling.scalingOf(a, limit), appExists },
      secrets,
      logs: new AppLogs({
        nc,
        appExists,
        logger,
        machinesOf: (a) => catalog.machinesOf(a).map((m) => m.state),
      }),
      inspector: new HostInspector(nc, catalog),
      tunnels: new HostTunnels(nc, catalog),
      registry: await ImageRegistry.open(nc, blobs, { replicas: config.HANGAR_STREAM_REPLICAS }),
      registryQuota: {
        usage: await KvBlobUsage.open(nc, { replicas: config.HANGAR_STREAM_REPLICAS }),
        bytesPerOrg: config.HANGAR_GATEWAY_ORG_BLOB_QUOTA_GB * 2 ** 30,
      },
      registryUploads: {
        maxBlobBytes: config.HANGAR_GATEWAY_MAX_BLOB_GB * 2 ** 30,
        ttlMs: config.HANGAR_GATEWAY_UPLOAD_TTL,
      },
      idempotency: await KvIdempotency.open(nc, { replicas: config.HANGAR_STREAM_REPLICAS, logger }),
      rateLimits: {
        limiter: await KvRateLimiter.open(nc, { replicas: config.HANGAR_STREAM_REPLICAS }),
        limits: config.HANGAR_GATEWAY_RATE_LIMITS,
        periodMs: config.HANGAR_GATEWAY_RATE_LIMIT_PERIOD,
        logger,
      },
      health: readiness,
      audit,
      volumes,
      events: { feed: events },
      postgres: new NatsPostgresBackend(nc, { defaultRegion: config.HANGAR_REGION, logger }),
      webhooks: new NatsWebhooksBackend(nc),
      dirImageRoots: config.HANGAR_DIR_IMAGE_ROOTS,
      upstreams: parseUpstreams(config.HANGAR_REGISTRY_UPSTREAMS),
      // The web dashboard on /dashboard; its sessions live in this process (a restart logs users out).
      dashboard: {},
    });
    const server = await startApiServer(app, {
      port: config.HANGAR_GATEWAY_PORT,
      hostname: config.HANGAR_GATEWAY_HOST ?? config.HANGAR_BIND_HOST,
    });
    logger.info({ url: server.url, apps: catalog.appNames().length }, "Machines API listening");
    return {
      health: () => ({ ok: true, apps: catalog.appNames().length }),
      async stop() {
        await server.close();
        wakes.unsubscribe();
        await Promise.all([
          catalog.stop(),
          builds.stop(),
          releases.stop(),
          scaling.stop(),
          audit.stop(),
          secrets.stop(),
          orgs.stop(),
          volumesView.stop(),
          events.stop(),
          relay.stop(),
        ]);
      },
    };
  },
});
