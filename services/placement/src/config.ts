import { defineServiceConfig, port, setting } from "@hangar/service";
import { z } from "zod";

/** Placement's settings (docs/configuration.md). */
export const config = defineServiceConfig("placement", {
  HANGAR_PLACEMENT_OPS_PORT: port(0, {
    description: "placement's /health and /metrics; 0 picks a free port",
  }),
  HANGAR_PLACEMENT_STRATEGY: setting(z.enum(["binpack", "spread"]).default("binpack"), {
    description: "binpack fills the fullest host that fits; spread picks the emptiest",
  }),
});
