import { machinesStream } from "@hangar/domain";
import { runService } from "@hangar/service";
import { config } from "./config.js";
import { Monitor } from "./monitor.js";

await runService({
  name: "monitor",
  config,
  streams: [machinesStream],
  start: ({ store, registry, logger, config }) =>
    Monitor.start(store, registry, { logger, appScrapeMs: config.HANGAR_MONITOR_APP_SCRAPE_MS }),
});
