import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  EDGE_BUNDLES_BUCKET,
  EDGE_BUNDLES_MAX_BYTES,
  EDGE_CACHE_BUCKET,
  EDGE_CACHE_MAX_BYTES,
} from "@hangar/config";
import type { ReleaseEvent } from "@hangar/domain";
import { EdgeRuntime } from "@hangar/edge";
import type { AggregateStream, EventStore } from "@hangar/eventstore";
import { patiently } from "@hangar/eventstore";
import { openKvBucket } from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import { Objm, StorageType } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { EDGE_CACHE_MAX_AGE_MS, KvEdgeCache } from "./cache.js";
import { ProxyEdgeHost } from "./host.js";
import { EdgeLogs } from "./logs.js";
import { EdgeReleases, type EdgeSecrets, ObjectStoreBundles } from "./releases.js";

export { EdgeFetchRefusedError, refusedForEdge } from "./outbound.js";
export type { EdgeSecrets } from "./releases.js";
export { EdgeReleases } from "./releases.js";
export type { EdgeApps } from "./serve.js";

export interface EdgeAppsOptions {
  nc: NatsConnection;
  store: EventStore;
  /** The route table: which private network an app is on (`.internal` fetches stay inside one). */
  routes: { privateNetworkOf(app: string): string | undefined };
  proxyId: string;
  region: string;
  /** The proxy's first domain: `<app>.<domain>` routes an `.internal` fetch. */
  domain: string;
  replicas: number;
  logger: Logger;
  /** The apps' deployed secrets (AppSecrets), each edge app's `env` over its [env]. */
  secrets?: EdgeSecrets;
  /** Tests: a prefixed RELEASES stream, buckets of their own, loopback reachable. */
  releases?: AggregateStream<ReleaseEvent>;
  bundlesBucket?: string;
  cacheBucket?: string;
  /** The bundles bucket's size when this creates it (HANGAR_EDGE_BUNDLES_MAX_BYTES; default EDGE_BUNDLES_MAX_BYTES). */
  bundlesMaxBytes?: number;
  /** The cache bucket's size when this creates it (HANGAR_PROXY_EDGE_CACHE_MAX_BYTES; default EDGE_CACHE_MAX_BYTES). */
  cacheMaxBytes?: number;
  isRefused?: (address: string) => boolean;
}

/** A proxy process's edge apps: what it runs, and the runtime they run in. */
export interface RunningEdgeApps {
  edge: EdgeReleases;
  runtime: EdgeRuntime;
  /**
   * Binds the proxy's internal listener (EdgeProxy.internal) to a loopback port of this process's
   * own (not shared through a cluster primary, so a worker's fetch is balanced by that worker): where
   * the apps' `<app>.internal` fetches go.
   */
  listenInternal(internal: Server): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a proxy process's edge apps: one runtime whose host fetches through the proxy and the
 * network, caches in the shared KV bucket and logs to `hangar logs`, loaded with every app's live
 * edge release (from the RELEASES stream and the bundles bucket) before it resolves.
 */
export async function startEdgeApps(opts: EdgeAppsOptions): Promise<RunningEdgeApps> {
  const { nc, replicas } = opts;
  const bundles = await patiently(() =>
    new Objm(nc).create(opts.bundlesBucket ?? EDGE_BUNDLES_BUCKET, {
      storage: StorageType.File,
      replicas,
      max_bytes: opts.bundlesMaxBytes ?? EDGE_BUNDLES_MAX_BYTES,
    }),
  );
  const cache = new KvEdgeCache(
    await openKvBucket(nc, opts.cacheBucket ?? EDGE_CACHE_BUCKET, {
      replicas,
      ttlMs: EDGE_CACHE_MAX_AGE_MS,
      maxBytes: opts.cacheMaxBytes ?? EDGE_CACHE_MAX_BYTES,
    }),
  );
  const logs = new EdgeLogs(nc, opts.proxyId, opts.region);
  let internal: AddressInfo | undefined;
  const runtime = new EdgeRuntime(
    new ProxyEdgeHost({
      internal: () => {
        if (internal === undefined) throw new Error("the proxy's internal listener is not up yet");
        return { host: internal.address, port: internal.port };
      },
      domain: opts.domain,
      privateNetworkOf: (app) => opts.routes.privateNetworkOf(app),
      cache,
      log: (app, level, message) => logs.publish(app, level, message),
      ...(opts.isRefused ? { isRefused: opts.isRefused } : {}),
    }),
  );
  const edge = await EdgeReleases.start(opts.store, {
    runtime,
    bundles: new ObjectStoreBundles(bundles),
    logger: opts.logger,
    ...(opts.secrets ? { secrets: opts.secrets } : {}),
    ...(opts.releases ? { stream: opts.releases } : {}),
  }).catch(async (err: unknown) => {
    await runtime.dispose();
    throw err;
  });
  return {
    edge,
    runtime,
    async listenInternal(server) {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => resolve());
      });
      internal = server.address() as AddressInfo;
    },
    async stop() {
      await edge.stop();
      await runtime.dispose();
    },
  };
}
