import { appsStream, machinesStream, scalingStream } from "@hangar/domain";
import { runService } from "@hangar/service";
import { config } from "./config.js";
import { startScheduler } from "./scheduler.js";

await runService({
  name: "scheduler",
  config,
  streams: [appsStream, machinesStream, scalingStream],
  start: ({ nc, store, logger, registry, config }) =>
    startScheduler({
      nc,
      store,
      logger,
      registry,
      panicWindowS: config.HANGAR_SCHEDULER_PANIC_WINDOW_S,
      stableWindowS: config.HANGAR_SCHEDULER_STABLE_WINDOW_S,
      drainTimeoutS: config.HANGAR_SCHEDULER_DRAIN_TIMEOUT_S,
    }),
});
