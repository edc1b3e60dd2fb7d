import { appsStream, machinesStream, pgclustersStream, secretsStream, volumesStream } from "@hangar/domain";
import { masterKeysFromConfig } from "@hangar/secrets";
import { runService } from "@hangar/service";
import { config } from "./config.js";
import { PostgresManager } from "./manager.js";

await runService({
  name: "postgres-manager",
  config,
  streams: [pgclustersStream, appsStream, machinesStream, secretsStream, volumesStream],
  start: ({ nc, store, logger, registry, config }) =>
    PostgresManager.start({
      nc,
      store,
      logger,
      registry,
      keys: masterKeysFromConfig(config),
      image: config.HANGAR_POSTGRES_MANAGER_IMAGE,
      agentPort: config.HANGAR_POSTGRES_MANAGER_AGENT_PORT,
      timings: {
        checkMs: config.HANGAR_POSTGRES_MANAGER_CHECK_MS,
        primaryLostMs: config.HANGAR_POSTGRES_MANAGER_PRIMARY_LOST_MS,
        fenceWaitMs: config.HANGAR_POSTGRES_MANAGER_FENCE_WAIT_MS,
        createTimeoutMs: config.HANGAR_POSTGRES_MANAGER_CREATE_TIMEOUT_S * 1000,
      },
      replicas: config.HANGAR_STREAM_REPLICAS,
      ...(config.HANGAR_DATABASE_URL ? { databaseUrl: config.HANGAR_DATABASE_URL } : {}),
    }),
});
