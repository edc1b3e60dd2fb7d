import { machinesStream, volumesStream } from "@hangar/domain";
import { runService } from "@hangar/service";
import { config } from "./config.js";
import { VolumeService } from "./volume-service.js";

await runService({
  name: "volume",
  config,
  streams: [volumesStream, machinesStream],
  start: ({ nc, store, logger, registry, config }) =>
    VolumeService.start({
      nc,
      store,
      logger,
      registry,
      snapshotIntervalMs: config.HANGAR_VOLUME_SNAPSHOT_INTERVAL_S * 1000,
      hostTimeoutMs: config.HANGAR_VOLUME_HOST_TIMEOUT_S * 1000,
      snapshotTimeoutMs: config.HANGAR_VOLUME_SNAPSHOT_TIMEOUT_S * 1000,
      retryIntervalMs: config.HANGAR_VOLUME_RETRY_INTERVAL_S * 1000,
      // Snapshots must outlive a NATS node as the streams do.
      replicas: config.HANGAR_STREAM_REPLICAS,
    }),
});
