import { appDecider, appsStream, buildsStream } from "@hangar/domain";
import { AggregateView, runService } from "@hangar/service";
import { Builder } from "./builder.js";
import { config } from "./config.js";
import { BuildNetworks } from "./network/build-network.js";
import { openBuildDeps } from "./platform.js";
import { checkBuilderHost } from "./preflight.js";

await runService({
  name: "builder",
  config,
  streams: [buildsStream, appsStream],
  async start({ nc, store, logger, registry, config }) {
    // A host without what RUN steps need fails here, saying what is missing, rather than at each build.
    await checkBuilderHost();
    const dataDir = config.HANGAR_BUILDER_DIR;
    const { deps, contexts } = await openBuildDeps(nc, dataDir, {}, config.HANGAR_STREAM_REPLICAS);
    // Which org holds each app: a build may not take its base from another org's app repository.
    const apps = await AggregateView.start(store, appsStream, appDecider);
    await apps.caughtUp;
    const builder = await Builder.start({
      nc,
      store,
      logger,
      deps,
      contexts,
      dataDir,
      registry,
      maxContextBytes: config.HANGAR_BUILDER_MAX_CONTEXT_MB * 2 ** 20,
      concurrency: config.HANGAR_BUILDER_CONCURRENCY,
      buildTimeoutMs: config.HANGAR_BUILDER_BUILD_TIMEOUT_S * 1000,
      network: config.HANGAR_BUILDER_NETWORK,
      networks: new BuildNetworks(config.HANGAR_BUILDER_NETWORK_CIDR),
      orgOf: (app) => {
        const a = apps.get(app);
        return a?.status === "created" ? a.orgSlug : undefined;
      },
    });
    logger.info({ builder_id: builder.builderId, data_dir: dataDir }, "builder started");
    return {
      health: () => builder.health(),
      stop: async () => {
        await builder.stop();
        await apps.stop();
      },
    };
  },
});
