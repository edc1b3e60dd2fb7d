import { appsStream, hostsStream, machinesStream, volumesStream } from "@hangar/domain";
import { runService } from "@hangar/service";
import { config } from "./config.js";
import { Placement } from "./placement.js";

await runService({
  name: "placement",
  config,
  streams: [hostsStream, machinesStream, volumesStream, appsStream],
  start: ({ nc, store, logger, registry, config }) =>
    Placement.start({ nc, store, logger, registry, strategy: config.HANGAR_PLACEMENT_STRATEGY }),
});
