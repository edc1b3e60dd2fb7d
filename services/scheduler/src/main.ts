import { hostname } from "node:os";
import { appsStream, machinesStream, releasesStream, scalingStream, volumesStream } from "@hangar/domain";
import { runService } from "@hangar/service";
import { config } from "./config.js";
import { runSchedulerUnderLease } from "./leader.js";

await runService({
  name: "scheduler",
  config,
  streams: [appsStream, machinesStream, scalingStream, releasesStream, volumesStream],
  // One replica acts (the scheduler lease's holder); the others stand by, healthy, and take over.
  start: ({ nc, store, logger, registry, config }) =>
    runSchedulerUnderLease({
      nc,
      store,
      logger,
      registry,
      // One per process: two replicas on one host must not both think they hold it.
      holder: `${hostname()}/${process.pid}`,
      leaseTtlMs: config.HANGAR_SCHEDULER_LEASE_TTL_S * 1000,
      replicas: config.HANGAR_STREAM_REPLICAS,
      panicWindowS: config.HANGAR_SCHEDULER_PANIC_WINDOW_S,
      stableWindowS: config.HANGAR_SCHEDULER_STABLE_WINDOW_S,
      drainTimeoutS: config.HANGAR_SCHEDULER_DRAIN_TIMEOUT_S,
      defaultRegion: config.HANGAR_REGION,
    }),
});
