import { defineServiceConfig, port } from "@hangar/service";

/** The monitor's settings (docs/configuration.md). */
export const config = defineServiceConfig("monitor", {
  HANGAR_MONITOR_OPS_PORT: port(4290, {
    description: "the monitor's /health and /metrics (the machine metrics Prometheus scrapes)",
    legacy: "HANGAR_MONITOR_PORT",
  }),
});
