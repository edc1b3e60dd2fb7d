import { defineServiceConfig, port, setting } from "@hangar/service";
import { z } from "zod";

/** The monitor's settings (docs/configuration.md). */
export const config = defineServiceConfig("monitor", {
  HANGAR_MONITOR_OPS_PORT: port(4290, {
    description: "the monitor's /health and /metrics (the machine metrics Prometheus scrapes)",
    legacy: "HANGAR_MONITOR_PORT",
  }),
  HANGAR_MONITOR_APP_SCRAPE_MS: setting(z.coerce.number().int().min(100).default(15_000), {
    description:
      "how often the monitor scrapes each started machine's own metrics (fly.toml [[metrics]]), served at /metrics/apps",
  }),
});
