import { parseDuration } from "@hangar/config";
import { defineServiceConfig, partlySharedSettings, port, setting } from "@hangar/service";
import { z } from "zod";
import { DEFAULT_RATE_LIMITS, parseRateLimits } from "./limits/actions.js";

/** A setting read with `parse`, whose RangeError becomes the setting's message. */
function parsed<T>(fallback: string, parse: (text: string) => T) {
  return z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      try {
        return parse(text);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
        return z.NEVER;
      }
    });
}

/** A Go duration ("90s", "1h") of at least `minMs`, in milliseconds. */
function duration(fallback: string, minMs: number) {
  return parsed(fallback, (text) => {
    const ms = parseDuration(text);
    if (ms < minMs) throw new RangeError(`"${text}" is shorter than ${minMs} ms`);
    return ms;
  });
}

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
  HANGAR_GATEWAY_TOKEN_KEY: setting(
    z
      .string()
      .transform((text) => new Uint8Array(Buffer.from(text, "base64")))
      .refine((key) => key.length >= 32, "at least 32 bytes, base64-encoded"),
    {
      description:
        "the root key every API token (macaroon) is signed and verified with: 32 or more random bytes, base64 (docs/security.md)",
    },
  ),
  HANGAR_GATEWAY_MAX_CONTEXT_MB: setting(z.coerce.number().positive().default(512), {
    description: "largest build context an upload may send, in MiB",
    legacy: "HANGAR_MAX_CONTEXT_MB",
  }),
  HANGAR_GATEWAY_RATE_LIMITS: setting(parsed("", parseRateLimits), {
    description: `calls per period of each rate-limited action for every org without its own limit, as comma-separated <action>=<count> over the defaults (${Object.entries(
      DEFAULT_RATE_LIMITS,
    )
      .map(([action, count]) => `${action}=${count}`)
      .join(",")})`,
    shownDefault: "the defaults",
  }),
  HANGAR_GATEWAY_RATE_LIMIT_PERIOD: setting(duration("1m", 1000), {
    description: "the period every rate limit counts its calls over (a Go duration)",
    shownDefault: "`1m`",
  }),
  HANGAR_GATEWAY_MAX_BLOB_GB: setting(z.coerce.number().positive().default(10), {
    description: "largest blob a registry upload (`/v2`) may send, in GiB",
  }),
  HANGAR_GATEWAY_ORG_BLOB_QUOTA_GB: setting(z.coerce.number().positive().default(100), {
    description:
      "blob bytes each org may store through registry uploads (`/v2`), in GiB; a blob already stored costs nothing",
  }),
  HANGAR_GATEWAY_UPLOAD_TTL: setting(duration("1h", 1000), {
    description:
      "how long a registry upload session may stay untouched before it is dropped with its bytes (a Go duration)",
    shownDefault: "`1h`",
  }),
  // dir: images are off unless listed; the gateway refuses them at machine create and update.
  HANGAR_DIR_IMAGE_ROOTS: partlySharedSettings.HANGAR_DIR_IMAGE_ROOTS,
  HANGAR_EDGE_BUNDLES_MAX_BYTES: partlySharedSettings.HANGAR_EDGE_BUNDLES_MAX_BYTES,
  HANGAR_SECRETS_KEY: partlySharedSettings.HANGAR_SECRETS_KEY,
  HANGAR_SECRETS_KEY_FILE: partlySharedSettings.HANGAR_SECRETS_KEY_FILE,
  HANGAR_SECRETS_PREVIOUS_KEYS: partlySharedSettings.HANGAR_SECRETS_PREVIOUS_KEYS,
  HANGAR_REGISTRY_UPSTREAMS: partlySharedSettings.HANGAR_REGISTRY_UPSTREAMS,
  HANGAR_GATEWAY_BLOB_REPLICAS: setting(z.coerce.number().int().min(1).max(5).optional(), {
    description: "replicas of the image blob bucket, when they differ from HANGAR_STREAM_REPLICAS",
    legacy: "HANGAR_BLOB_REPLICAS",
    shownDefault: "HANGAR_STREAM_REPLICAS",
  }),
});
