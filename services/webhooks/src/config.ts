import { defineServiceConfig, partlySharedSettings, port, type SettingMeta, setting } from "@hangar/service";
import { z } from "zod";

/** A whole number of milliseconds (or a count), at least `min`. */
const whole = (fallback: number, meta: SettingMeta, min = 1) =>
  setting(z.coerce.number().int().min(min).default(fallback), meta);

/** The webhooks service's settings (docs/configuration.md, docs/webhooks.md). */
export const config = defineServiceConfig("webhooks", {
  HANGAR_WEBHOOKS_OPS_PORT: port(0, {
    description: "the webhooks service's /health and /metrics; 0 picks a free port",
  }),
  // Webhook signing secrets are sealed by the master key at create and opened to sign each delivery.
  HANGAR_SECRETS_KEY: partlySharedSettings.HANGAR_SECRETS_KEY,
  HANGAR_SECRETS_KEY_FILE: partlySharedSettings.HANGAR_SECRETS_KEY_FILE,
  HANGAR_SECRETS_PREVIOUS_KEYS: partlySharedSettings.HANGAR_SECRETS_PREVIOUS_KEYS,
  HANGAR_WEBHOOKS_RETRY_INITIAL_MS: whole(10_000, {
    description: "the wait after a delivery's first failed attempt; it doubles after each further one",
  }),
  HANGAR_WEBHOOKS_RETRY_MAX_MS: whole(3_600_000, {
    description: "the longest wait between two attempts of a delivery",
  }),
  HANGAR_WEBHOOKS_GIVE_UP_AFTER_MS: whole(86_400_000, {
    description:
      "how long a delivery is retried, from its first attempt (or its redelivery), before it is given up",
  }),
  HANGAR_WEBHOOKS_TIMEOUT_MS: whole(
    10_000,
    {
      description: "how long a receiver has to answer a delivery before the attempt counts as failed",
    },
    100,
  ),
  HANGAR_WEBHOOKS_CONCURRENCY: whole(4, {
    description: "deliveries in flight to one webhook at once (a slow receiver holds only its own)",
  }),
  HANGAR_WEBHOOKS_ALLOW_PRIVATE_TARGETS: setting(z.stringbool().default(false), {
    description:
      "let webhook URLs reach loopback, private and link-local addresses (development and tests only: the control plane lives there)",
  }),
});
