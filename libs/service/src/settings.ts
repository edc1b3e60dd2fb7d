// A service's environment as one zod object. One naming rule: `HANGAR_<SERVICE>_...` for a
// service's own settings (`HANGAR_<SERVICE>_OPS_PORT` for its ops server, `HANGAR_<SERVICE>_PORT`
// for a public listener), `HANGAR_...` for the shared ones below. A setting renamed by that rule
// keeps its old name in `legacy` for one release: the old name still works, with a warning.
import { homedir } from "node:os";
import { join } from "node:path";
import { DirImageRootsSchema, EDGE_BUNDLES_MAX_BYTES } from "@hangar/config";
import { z } from "zod";

/** What docs/configuration.md says about a setting, beside its schema. */
export interface SettingMeta {
  /** What it means, one sentence. */
  description: string;
  /** The name it had before the naming rule; read, with a warning, when the new one is unset. */
  legacy?: string;
  /** The default as the docs state it, when it is computed at start (hostname, CPU count...). */
  shownDefault?: string;
}

/** A setting: its schema with what the docs say about it. */
export function setting<T extends z.ZodType>(schema: T, meta: SettingMeta): T {
  return schema.meta({ ...meta });
}

/** A TCP port; 0 picks a free one. */
export function port(fallback: number, meta: SettingMeta): z.ZodDefault<z.ZodCoercedNumber> {
  return setting(
    z.coerce.number().int().min(0).max(65535).default(fallback),
    meta,
  ) as z.ZodDefault<z.ZodCoercedNumber>;
}

/** The settings every service reads. */
export const sharedSettings = {
  HANGAR_NATS_URL: setting(z.string().default("nats://127.0.0.1:4222"), {
    description: "NATS servers to connect to, comma-separated",
  }),
  HANGAR_NATS_CREDS: setting(z.string().optional(), {
    description:
      "file holding this service's NATS user seed (nkey); without it the service connects without authentication",
  }),
  HANGAR_REGION: setting(
    z
      .string()
      .regex(/^[a-z0-9-]+$/, "a region name: a-z, 0-9 and -")
      .default("local"),
    {
      description: "the region this process runs in",
    },
  ),
  HANGAR_STREAM_REPLICAS: setting(z.coerce.number().int().min(1).max(5).default(1), {
    description:
      "replicas of the streams and buckets a service creates, but snapshots (3 in deploy/k8s, on its 3-node NATS)",
  }),
  HANGAR_BIND_HOST: setting(z.string().min(1).default("127.0.0.1"), {
    description: "address the ops servers (/health, /metrics) and the gateway's API listen on",
  }),
  HANGAR_HOME: setting(z.string().min(1).default(join(homedir(), ".hangar")), {
    description: "the platform's folder: local.json, logs, the host agents' state",
    shownDefault: "`~/.hangar`",
  }),
  LOG_LEVEL: setting(z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"), {
    description: "log level (pino)",
  }),
};

/**
 * Shared settings (`HANGAR_...`, one value for the whole platform) that only some services read:
 * each of them lists the ones it reads among its own settings, and the docs show each once.
 */
export const partlySharedSettings = {
  HANGAR_DIR_IMAGE_ROOTS: setting(DirImageRootsSchema, {
    description:
      "colon-separated folders whose dir: images may run (development only); unset, dir: images are refused",
    shownDefault: "unset (dir: images off)",
  }),
  // Read by the gateway (writes edge bundles) and the proxy (reads them): whichever creates the bucket sets it.
  HANGAR_EDGE_BUNDLES_MAX_BYTES: setting(z.coerce.number().int().positive().default(EDGE_BUNDLES_MAX_BYTES), {
    description:
      "the most the edge apps' bundles bucket (hangar-edge-bundles) holds, every app's bundles together: an upload past it fails; applied when the bucket is created",
  }),
  // Read by the gateway (seals secrets) and every host agent (opens them when a machine starts).
  HANGAR_SECRETS_KEY: setting(z.string().min(1).optional(), {
    description:
      "the secrets master key: 32 random bytes in base64 (openssl rand -base64 32); or HANGAR_SECRETS_KEY_FILE",
    shownDefault: "unset (secrets off)",
  }),
  HANGAR_SECRETS_KEY_FILE: setting(z.string().min(1).optional(), {
    description: "a file (mode 0600) holding the secrets master key in base64; npm start creates one",
    shownDefault: "unset",
  }),
  HANGAR_SECRETS_PREVIOUS_KEYS: setting(
    z
      .string()
      .default("")
      .transform((list) =>
        list
          .split(",")
          .map((k) => k.trim())
          .filter((k) => k !== ""),
      ),
    {
      description:
        "comma-separated earlier master keys (base64) still accepted after a rotation; the gateway rewraps every data key under the current key at start",
      shownDefault: "none",
    },
  ),
  // Read by the services that keep a read model in the platform's Postgres (POSTGRES_SERVICES in
  // scripts/platform.ts): the postgres manager.
  HANGAR_DATABASE_URL: setting(z.string().url().optional(), {
    description:
      "the platform's own Postgres (read models), a postgres:// URL with its password; npm start makes one under its data folder",
    shownDefault: "unset (the postgres manager answers list from its own fold of PGCLUSTERS)",
  }),
  // Read by the builder and every host agent of a machine: one folder of unpacked layers may serve them all.
  HANGAR_LAYERS_DIR: setting(z.string().optional(), {
    description:
      "where unpacked image layers are kept, one folder per layer digest, each unpacked once into a temp folder and renamed into place: the builder and host agents of one machine may share it (the tests share one per run)",
    shownDefault: "`layers` in the service's own folder",
  }),
  // Read by the builder (FROM), every host agent (machine images) and the gateway (which refs name
  // no app's image): the same map everywhere.
  HANGAR_REGISTRY_UPSTREAMS: setting(
    z
      .string()
      .default("")
      .refine((json) => {
        if (json.trim() === "") return true;
        try {
          const doc = JSON.parse(json) as unknown;
          return (
            typeof doc === "object" &&
            doc !== null &&
            !Array.isArray(doc) &&
            Object.values(doc).every((url) => typeof url === "string" && /^https?:\/\/[^/]+/.test(url))
          );
        } catch {
          return false;
        }
      }, 'a JSON object of registry host -> http(s) URL, e.g. {"docker.io":"https://registry-1.docker.io"}'),
    {
      description:
        'the remote registries images are pulled from, through Hangar\'s registry as a cache: a JSON object of registry host -> base URL, e.g. `{"docker.io":"https://registry-1.docker.io"}` (a ref without a host is docker.io\'s); unset, nothing is pulled and short names such as `node:20` are the platform-made bases',
      shownDefault: "unset (no upstream)",
    },
  ),
};

type SharedShape = typeof sharedSettings;

/** A service's settings: the shared ones plus its own, one zod object. */
export interface ServiceConfig<Own extends z.ZodRawShape = z.ZodRawShape> {
  /** The service's name, as in `services/<name>`. */
  service: string;
  schema: z.ZodObject<SharedShape & Own>;
  /** The name of its ops server's port setting: `HANGAR_<SERVICE>_OPS_PORT`. */
  opsPortKey: string;
  /** Reads the environment: legacy names applied with a warning, bad values a ConfigError. */
  load(env?: NodeJS.ProcessEnv, warn?: (message: string) => void): ServiceSettings<Own>;
  /** The environment that sets these values, for launchers: only this service's names compile. */
  toEnv(values: SettingValues<SharedShape & Own>): Record<string, string>;
}

/** Values to put in the environment, by setting name; undefined leaves a setting out. */
export type SettingValues<Shape extends z.ZodRawShape> = {
  [K in keyof Shape]?: string | number | boolean | undefined;
};

/** The parsed shared settings. */
export type SharedSettings = z.output<z.ZodObject<SharedShape>>;

/** The parsed settings of a service: the shared ones and its own. */
export type ServiceSettings<Own extends z.ZodRawShape = z.ZodRawShape> = SharedSettings &
  z.output<z.ZodObject<Own>>;

/** An environment variable with a value its schema refuses. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** `HANGAR_<SERVICE>_`: the prefix of a service's own settings (`host-agent` -> `HANGAR_HOST_AGENT_`). */
export function settingPrefix(service: string): string {
  return `HANGAR_${service.toUpperCase().replace(/-/g, "_")}_`;
}

/** Settings holding secret key material, which `load` deletes from the environment it read. */
const KEYS_TAKEN_FROM_ENV = ["HANGAR_SECRETS_KEY", "HANGAR_SECRETS_PREVIOUS_KEYS"] as const;

/**
 * Defines a service's settings; its own must follow the naming rule and include its ops port.
 * Loading them takes the secrets master keys out of the environment (KEYS_TAKEN_FROM_ENV).
 */
export function defineServiceConfig<Own extends z.ZodRawShape>(
  service: string,
  own: Own,
): ServiceConfig<Own> {
  const prefix = settingPrefix(service);
  const opsPortKey = `${prefix}OPS_PORT`;
  for (const [key, field] of Object.entries(own)) {
    const partlyShared = (partlySharedSettings as Record<string, z.ZodType>)[key] === field;
    if (!key.startsWith(prefix) && !partlyShared)
      throw new Error(`${service}'s setting ${key} does not start with ${prefix}`);
  }
  if (!(opsPortKey in own)) throw new Error(`${service} has no ${opsPortKey} setting`);
  const schema = z.object({ ...sharedSettings, ...own });
  return {
    service,
    schema,
    opsPortKey,
    load(env = process.env, warn = (message) => process.stderr.write(`${message}\n`)) {
      const { values, from } = withLegacyNames(schema, env, warn);
      const parsed = schema.safeParse(values);
      if (parsed.success) {
        // The master keys live on in the settings only: out of the environment, no child the
        // service spawns (the DNS resolver, a machine's wrapper, a build) inherits them.
        for (const key of KEYS_TAKEN_FROM_ENV) delete env[key];
        // zod cannot see through the generic spread; the object is exactly the shared shape plus Own.
        return parsed.data as ServiceSettings<Own>;
      }
      const lines = parsed.error.issues.map((issue) => {
        const key = String(issue.path[0]);
        const name = from.get(key) ?? key;
        return `${name}=${JSON.stringify(values[key])}: ${issue.message}`;
      });
      throw new ConfigError(`hangar-${service}: bad settings\n  ${lines.join("\n  ")}`);
    },
    toEnv(values) {
      const env: Record<string, string> = {};
      for (const [key, value] of Object.entries(values)) {
        if (!(key in schema.shape)) throw new Error(`${key} is not a setting of ${service}`);
        if (value !== undefined) env[key] = String(value);
      }
      return env;
    },
  };
}

/**
 * The environment's values for the schema's keys. Empty values count as unset. A key that is unset
 * takes its legacy name's value, with a warning; a legacy name beside the new one is ignored, with
 * a warning. `from` maps each key that took a legacy value to that name, for error messages.
 */
function withLegacyNames(
  schema: z.ZodObject,
  env: NodeJS.ProcessEnv,
  warn: (message: string) => void,
): { values: Record<string, string | undefined>; from: Map<string, string> } {
  const values: Record<string, string | undefined> = {};
  const from = new Map<string, string>();
  for (const [key, field] of Object.entries(schema.shape)) {
    const value = nonEmpty(env[key]);
    const legacy = settingMeta(field)?.legacy;
    const old = legacy ? nonEmpty(env[legacy]) : undefined;
    if (legacy && old !== undefined && value !== undefined) {
      warn(
        `${legacy} is ignored: ${key} is set too (${legacy} is its old name, read until the next release)`,
      );
    } else if (legacy && old !== undefined) {
      warn(`${legacy} is deprecated: set ${key} instead (the old name is read until the next release)`);
      from.set(key, legacy);
      values[key] = old;
      continue;
    }
    values[key] = value;
  }
  return { values, from };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/** What a setting's schema carries for the docs, if it was made with `setting`. */
export function settingMeta(field: z.ZodType): SettingMeta | undefined {
  const meta = field.meta();
  return meta && typeof meta.description === "string" ? (meta as unknown as SettingMeta) : undefined;
}

/**
 * The markdown table of every setting of these services (docs/configuration.md): the shared ones
 * once, then each service's own, with default, meaning and old name.
 */
export function settingsTable(configs: ServiceConfig[]): string {
  const rows: string[][] = [];
  const row = (key: string, service: string, field: z.ZodType) => {
    const meta = settingMeta(field);
    if (meta === undefined) throw new Error(`${key} has no description: define it with setting()`);
    rows.push([
      `\`${key}\``,
      service,
      shownDefault(field, meta),
      meta.description,
      meta.legacy ? `\`${meta.legacy}\`` : "",
    ]);
  };
  for (const [key, field] of Object.entries(sharedSettings)) row(key, "all", field);
  for (const [key, field] of Object.entries(partlySharedSettings)) {
    const readers = configs.filter((config) => key in config.schema.shape).map((config) => config.service);
    if (readers.length > 0) row(key, readers.join(", "), field);
  }
  for (const config of configs) {
    for (const [key, field] of Object.entries(config.schema.shape)) {
      if (!(key in sharedSettings) && !(key in partlySharedSettings))
        row(key, config.service, field as z.ZodType);
    }
  }
  const header = ["setting", "service", "default", "meaning", "old name (read until the next release)"];
  const lines = [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`);
  return `${lines.join("\n")}\n`;
}

function shownDefault(field: z.ZodType, meta: SettingMeta): string {
  if (meta.shownDefault !== undefined) return meta.shownDefault;
  const parsed = field.safeParse(undefined);
  if (!parsed.success) return "required";
  return parsed.data === undefined ? "unset" : `\`${String(parsed.data)}\``;
}
