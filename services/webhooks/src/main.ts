import { appsStream, webhooksStream } from "@hangar/domain";
import { masterKeysFromConfig } from "@hangar/secrets";
import { runService } from "@hangar/service";
import { config } from "./config.js";
import { WebhooksService } from "./webhooks-service.js";

await runService({
  name: "webhooks",
  config,
  streams: [webhooksStream, appsStream],
  start: ({ nc, store, logger, registry, config }) =>
    WebhooksService.start({
      nc,
      store,
      logger,
      registry,
      keys: masterKeysFromConfig(config),
      policy: {
        initialMs: config.HANGAR_WEBHOOKS_RETRY_INITIAL_MS,
        maxMs: config.HANGAR_WEBHOOKS_RETRY_MAX_MS,
        giveUpAfterMs: config.HANGAR_WEBHOOKS_GIVE_UP_AFTER_MS,
      },
      timeoutMs: config.HANGAR_WEBHOOKS_TIMEOUT_MS,
      concurrency: config.HANGAR_WEBHOOKS_CONCURRENCY,
      allowPrivate: config.HANGAR_WEBHOOKS_ALLOW_PRIVATE_TARGETS,
      replicas: config.HANGAR_STREAM_REPLICAS,
    }),
});
