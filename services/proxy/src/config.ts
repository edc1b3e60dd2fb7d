import { EDGE_CACHE_MAX_BYTES } from "@hangar/config";
import { defineServiceConfig, partlySharedSettings, port, setting } from "@hangar/service";
import { z } from "zod";
import { QUEUE_DEFAULTS } from "./engine/mod.js";

const count = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** The proxy's settings (docs/configuration.md). */
export const config = defineServiceConfig("proxy", {
  HANGAR_PROXY_PORT: port(8080, {
    description: "where the proxy serves apps (`http://<app>.localhost:8080`)",
  }),
  HANGAR_PROXY_HOST: setting(z.string().min(1).default("0.0.0.0"), {
    description: "address the proxy's public listener binds (the edge: all interfaces by default)",
  }),
  HANGAR_PROXY_OPS_PORT: port(0, { description: "the proxy's /health and /metrics; 0 picks a free port" }),
  HANGAR_PROXY_DOMAINS: setting(
    z
      .string()
      .default("localhost")
      .transform((v) =>
        v
          .split(",")
          .map((d) => d.trim())
          .filter(Boolean),
      ),
    { description: "comma-separated domains whose `<app>.<domain>` hosts the proxy routes" },
  ),
  HANGAR_PROXY_ID: setting(z.string().optional(), {
    description: "this proxy's id in heartbeats and load samples",
    shownDefault: "`<hostname>-<pid>-<random>`",
  }),
  HANGAR_PROXY_QUEUE_MAX: setting(count(QUEUE_DEFAULTS.queueMax), {
    description: "requests held per app while its machines are at their hard limit (then 503)",
  }),
  HANGAR_PROXY_QUEUE_TIMEOUT_MS: setting(count(QUEUE_DEFAULTS.queueTimeoutMs), {
    description: "how long a held request waits for a machine before a 503",
  }),
  HANGAR_PROXY_WAKE_TIMEOUT_MS: setting(count(QUEUE_DEFAULTS.wakeTimeoutMs), {
    description: "how long a held request waits while a machine is woken",
  }),
  HANGAR_PROXY_WORKERS: setting(count(1), {
    description:
      "proxy worker processes (node:cluster: the first process accepts connections and hands them out); each holds its part of every machine's soft and hard limits",
  }),
  HANGAR_PROXY_EDGE_CACHE_MAX_BYTES: setting(count(EDGE_CACHE_MAX_BYTES), {
    description:
      "the most the edge apps' cache bucket (hangar-edge-cache) holds, every app's entries together: a set past it fails; applied when the bucket is created",
  }),
  HANGAR_EDGE_BUNDLES_MAX_BYTES: partlySharedSettings.HANGAR_EDGE_BUNDLES_MAX_BYTES,
  // The edge apps' secrets are opened with it when their code is deployed (docs/security.md).
  HANGAR_SECRETS_KEY: partlySharedSettings.HANGAR_SECRETS_KEY,
  HANGAR_SECRETS_KEY_FILE: partlySharedSettings.HANGAR_SECRETS_KEY_FILE,
  HANGAR_SECRETS_PREVIOUS_KEYS: partlySharedSettings.HANGAR_SECRETS_PREVIOUS_KEYS,
});
