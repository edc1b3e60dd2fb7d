import { defineServiceConfig, port, setting } from "@hangar/service";
import { z } from "zod";
import { DEFAULT_PANIC_WINDOW_S, DEFAULT_STABLE_WINDOW_S } from "./autoscaler.js";
import { DEFAULT_DRAIN_TIMEOUT_S } from "./executor.js";
import { DEFAULT_LEASE_TTL_MS } from "./leader.js";

const seconds = (fallback: number) => z.coerce.number().positive().default(fallback);

/** The scheduler's (autoscaler's) settings (docs/configuration.md). */
export const config = defineServiceConfig("scheduler", {
  HANGAR_SCHEDULER_OPS_PORT: port(0, {
    description: "the scheduler's /health and /metrics; 0 picks a free port",
  }),
  HANGAR_SCHEDULER_PANIC_WINDOW_S: setting(seconds(DEFAULT_PANIC_WINDOW_S), {
    description: "the autoscaler's panic window: the short average that scales up on a burst",
    legacy: "HANGAR_SCALER_PANIC_WINDOW_S",
  }),
  HANGAR_SCHEDULER_STABLE_WINDOW_S: setting(seconds(DEFAULT_STABLE_WINDOW_S), {
    description:
      "the autoscaler's stable window: the long average, and how long a machine runs before a stop",
    legacy: "HANGAR_SCALER_STABLE_WINDOW_S",
  }),
  HANGAR_SCHEDULER_LEASE_TTL_S: setting(seconds(DEFAULT_LEASE_TTL_MS / 1000), {
    description:
      "the scheduler lease's time to live: one replica acts, the others stand by and take over within about 4/3 of it when it dies",
  }),
  HANGAR_SCHEDULER_DRAIN_TIMEOUT_S: setting(seconds(DEFAULT_DRAIN_TIMEOUT_S), {
    description: "how long a cordoned machine drains before it is checked again and stopped",
    legacy: "HANGAR_SCALER_DRAIN_TIMEOUT_S",
  }),
});
