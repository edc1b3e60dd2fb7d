import { defineServiceConfig, partlySharedSettings, port, setting } from "@hangar/service";
import { z } from "zod";

/** The gateway's settings (docs/configuration.md). */
export const config = defineServiceConfig("gateway", {
  HANGAR_GATEWAY_PORT: port(4280, { description: "the Machines API (Fly's port)" }),
  HANGAR_GATEWAY_HOST: setting(z.string().min(1).optional(), {
    description: "address the Machines API binds, when it differs from HANGAR_BIND_HOST",
    shownDefault: "HANGAR_BIND_HOST",
  }),
  HANGAR_GATEWAY_OPS_PORT: port(0, {
    description: "the gateway's /health and /metrics; 0 picks a free port",
  }),
  HANGAR_GATEWAY_TOKEN: setting(z.string().min(16, "at least 16 characters"), {
    description: "the API's bearer token",
    legacy: "HANGAR_TOKEN",
  }),
  HANGAR_GATEWAY_MAX_CONTEXT_MB: setting(z.coerce.number().positive().default(512), {
    description: "largest build context an upload may send, in MiB",
    legacy: "HANGAR_MAX_CONTEXT_MB",
  }),
  // dir: images are off unless listed; the gateway refuses them at machine create and update.
  HANGAR_DIR_IMAGE_ROOTS: partlySharedSettings.HANGAR_DIR_IMAGE_ROOTS,
  HANGAR_GATEWAY_BLOB_REPLICAS: setting(z.coerce.number().int().min(1).max(5).optional(), {
    description: "replicas of the image blob bucket, when they differ from HANGAR_STREAM_REPLICAS",
    legacy: "HANGAR_BLOB_REPLICAS",
    shownDefault: "HANGAR_STREAM_REPLICAS",
  }),
});
