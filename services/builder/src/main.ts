import { buildsStream } from "@hangar/domain";
import { runService } from "@hangar/service";
import { Builder } from "./builder.js";
import { config } from "./config.js";
import { openBuildDeps } from "./platform.js";
import { checkBuilderHost } from "./preflight.js";

await runService({
  name: "builder",
  config,
  streams: [buildsStream],
  async start({ nc, store, logger, registry, config }) {
    // A host without what RUN steps need fails here, saying what is missing, rather than at each build.
    await checkBuilderHost();
    const dataDir = config.HANGAR_BUILDER_DIR;
    const { deps, contexts } = await openBuildDeps(nc, dataDir, {}, config.HANGAR_STREAM_REPLICAS);
    const builder = await Builder.start({
      nc,
      store,
      logger,
      deps,
      contexts,
      dataDir,
      registry,
      maxContextBytes: config.HANGAR_BUILDER_MAX_CONTEXT_MB * 2 ** 20,
    });
    logger.info({ builder_id: builder.builderId, data_dir: dataDir }, "builder started");
    return builder;
  },
});
