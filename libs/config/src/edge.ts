import { EDGE_BODY_MAX_BYTES, EDGE_DEFAULT_LIMITS } from "@hangar/edge/contract";
import { z } from "zod";

/**
 * The Object Store bucket of edge apps' bundles: the gateway writes (POST /v1/apps/{app}/edge/bundles),
 * the proxies read. One object per app and digest (edgeBundleName).
 */
export const EDGE_BUNDLES_BUCKET = "hangar-edge-bundles";

/** The KV bucket of the edge apps' caches (`fly.cache`), shared by every proxy and worker; keys scoped by app. */
export const EDGE_CACHE_BUCKET = "hangar-edge-cache";

/**
 * The default of HANGAR_PROXY_EDGE_CACHE_MAX_BYTES: the most the cache bucket holds, every app's
 * entries together. JetStream reserves a bucket's max_bytes against the server's max_file_store when
 * the bucket is made, so the two edge buckets' defaults together (512 MiB) fit the smallest NATS of
 * deploy/k8s (the local overlay's 800 MiB); raise them where NATS has more room.
 */
export const EDGE_CACHE_MAX_BYTES = 256 * 1024 * 1024;

/** The default of HANGAR_EDGE_BUNDLES_MAX_BYTES: the most the bundles bucket holds, every app's bundles together (see above). */
export const EDGE_BUNDLES_MAX_BYTES = 256 * 1024 * 1024;

/** The largest bundle the gateway stores: as large as a body that may cross into an isolate. */
export const EDGE_BUNDLE_MAX_BYTES = EDGE_BODY_MAX_BYTES;

/**
 * The object name of an app's bundle. Scoped by app: a release may only name a bundle its own app
 * uploaded, so knowing another app's digest gives nothing.
 */
export const edgeBundleName = (app: string, digest: string): string => `${app}/${digest}`;

/** The bounds of [edge] cpu_ms and memory_mb. */
export const EDGE_CPU_MS_MAX = 30_000;
export const EDGE_MEMORY_MB_MIN = 8;
export const EDGE_MEMORY_MB_MAX = 2048;

/** `[edge]` of an app config: the app is JavaScript run in the proxies, with no machines of its own. */
export const EdgeConfigSchema = z.strictObject({
  /** The entry module, relative to the config's folder; default: what detectEdgeEntry finds. */
  entry: z.string().min(1).optional(),
  /** CPU time per request, in ms. */
  cpu_ms: z.number().int().min(1).max(EDGE_CPU_MS_MAX).default(EDGE_DEFAULT_LIMITS.cpuMs),
  /** The app's isolate heap, in MB. */
  memory_mb: z
    .number()
    .int()
    .min(EDGE_MEMORY_MB_MIN)
    .max(EDGE_MEMORY_MB_MAX)
    .default(EDGE_DEFAULT_LIMITS.memoryMb),
});

export type EdgeConfig = z.output<typeof EdgeConfigSchema>;

/** Keys of an app config that give an edge app's machines, which it does not have: each one present gets a warning. */
export const EDGE_MACHINE_KEYS: readonly string[] = [
  "build",
  "http_service",
  "services",
  "mounts",
  "processes",
  "vm",
  "checks",
  "statics",
  "files",
  "restart",
  "deploy.release_command",
  "deploy.release_command_vm",
];
