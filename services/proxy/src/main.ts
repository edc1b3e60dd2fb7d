import cluster from "node:cluster";
import { STATICS_BUCKET } from "@hangar/config";
import { appsStream, machinesStream, releasesStream, secretsStream } from "@hangar/domain";
import { patiently } from "@hangar/eventstore";
import { masterKeysFromConfig } from "@hangar/secrets";
import { AppSecrets, runService } from "@hangar/service";
import { Objm, StorageType } from "@nats-io/obj";
import { config } from "./config.js";
import { startEdgeApps } from "./edge/mod.js";
import { createProxy } from "./engine/mod.js";
import { LoadPublisher, proxyIdOf } from "./load.js";
import { StreamRouteTable } from "./routes/route-table.js";
import { StaticFiles } from "./statics/static-files.js";
import { CommandWaker } from "./wake.js";
import { ProxyWorkers, serveAsWorker, workerShare } from "./workers.js";

// HANGAR_PROXY_WORKERS > 1: this process forks the workers that serve, and serves /health and
// /metrics for them all (src/workers.ts); each worker runs the proxy below with its part of the limits.
const workers = cluster.isPrimary ? workerCount() : 1;
if (workers > 1) {
  // Loading the settings takes the master keys out of this process's environment: each worker is
  // given them as they were (its own load takes them out of its environment again).
  const keys = {
    HANGAR_SECRETS_KEY: process.env.HANGAR_SECRETS_KEY,
    HANGAR_SECRETS_PREVIOUS_KEYS: process.env.HANGAR_SECRETS_PREVIOUS_KEYS,
  };
  await runService({
    name: "proxy",
    config,
    streams: [],
    async start({ logger, registry, config }) {
      const pool = new ProxyWorkers(workers, proxyIdOf(config.HANGAR_PROXY_ID), logger, keys);
      pool.aggregate(registry);
      logger.info({ port: config.HANGAR_PROXY_PORT, workers }, "proxy workers starting");
      return {
        health: () => ({ ok: pool.healthy, workers, workers_ready: pool.readyCount }),
        stop: () => pool.stop(),
      };
    },
  });
} else {
  await serve();
}

async function serve(): Promise<void> {
  const share = workerShare();
  await runService({
    name: "proxy",
    config,
    streams: [appsStream, machinesStream, releasesStream, secretsStream],
    async start({ nc, store, logger, registry, config, step }) {
      const proxyId = proxyIdOf(config.HANGAR_PROXY_ID);
      const region = config.HANGAR_REGION;
      step("replaying APPS and MACHINES into the route table");
      const routes = await StreamRouteTable.start(store);
      step(`opening the ${STATICS_BUCKET} object store`);
      // The files of the apps' [[statics]], which the builder takes out of their images.
      const staticsBucket = await patiently(() =>
        new Objm(nc).create(STATICS_BUCKET, {
          storage: StorageType.File,
          replicas: config.HANGAR_STREAM_REPLICAS,
        }),
      );
      // The master key is read here, once; the process's environment holds at most the key file's path.
      // Edge apps' secrets are opened with it into their `env` (as a host agent opens a machine's).
      step("replaying the apps' secrets");
      const secrets = await AppSecrets.start(store, masterKeysFromConfig(config));
      // Edge apps: each live edge release's bundle runs in this process's runtime (docs/edge.md).
      step("starting the edge apps (buckets, RELEASES, live bundles)");
      const edgeApps = await startEdgeApps({
        secrets,
        nc,
        store,
        routes,
        proxyId,
        region,
        domain: config.HANGAR_PROXY_DOMAINS[0] ?? "localhost",
        replicas: config.HANGAR_STREAM_REPLICAS,
        cacheMaxBytes: config.HANGAR_PROXY_EDGE_CACHE_MAX_BYTES,
        bundlesMaxBytes: config.HANGAR_EDGE_BUNDLES_MAX_BYTES,
        logger,
      });
      // The load publisher reports at once what a drain waits for: a route change, a machine drained.
      let load: LoadPublisher | undefined;
      const proxy = createProxy({
        onDrained: (app) => load?.soon(app),
        routes,
        domains: config.HANGAR_PROXY_DOMAINS,
        region,
        logger,
        registry,
        waker: new CommandWaker(nc, { machineSeq: (app, id) => routes.machineSeq(app, id) }),
        queueMax: config.HANGAR_PROXY_QUEUE_MAX,
        queueTimeoutMs: config.HANGAR_PROXY_QUEUE_TIMEOUT_MS,
        wakeTimeoutMs: config.HANGAR_PROXY_WAKE_TIMEOUT_MS,
        statics: new StaticFiles(staticsBucket, logger),
        edge: edgeApps.edge,
        ...(share === undefined ? {} : { share }),
      });
      step("listening");
      await edgeApps.listenInternal(proxy.internal);
      await new Promise<void>((resolve, reject) => {
        proxy.server.once("error", reject);
        proxy.server.listen(config.HANGAR_PROXY_PORT, config.HANGAR_PROXY_HOST, () => resolve());
      });
      load = LoadPublisher.start({ nc, proxyId, region, stats: () => proxy.stats() });
      const publisher = load;
      const unwatch = routes.onChange((app) => publisher.soon(app));
      logger.info(
        { port: config.HANGAR_PROXY_PORT, domains: config.HANGAR_PROXY_DOMAINS, proxy_id: proxyId },
        "proxy listening",
      );
      if (share !== undefined) serveAsWorker(registry);
      return {
        health: () => ({
          ok: routes.live,
          proxy_id: proxyId,
          routes: routes.snapshot(),
          edge: edgeApps.edge.versions(),
        }),
        async stop() {
          unwatch();
          publisher.stop();
          await proxy.close();
          await edgeApps.stop();
          await secrets.stop();
          await routes.stop();
        },
      };
    },
  });
}

/** HANGAR_PROXY_WORKERS; 1 when the settings do not load (runService then says why and exits). */
function workerCount(): number {
  try {
    // A copy: loading takes the master keys out of the environment it reads, and runService reads them.
    return config.load({ ...process.env }, () => {}).HANGAR_PROXY_WORKERS;
  } catch {
    return 1;
  }
}
