import { posix } from "node:path";
import { z } from "zod";
import { MachineCheckSchema } from "./checks.js";
import { DurationSchema } from "./duration.js";
import { guestPathProblem, isBase64 } from "./files.js";
import { ImageSchema } from "./image.js";
import { CountSchema, PortSchema, StringListSchema, StringMapSchema } from "./primitives.js";
import { MachineServiceSchema } from "./services.js";
import { StopSignalSchema } from "./signals.js";

// Objects are loose at every level: Fly ignores fields it does not know, and keeping them lets a newer
// client's fields reach the services that understand them. Optional fields also take null, which Go
// clients send for nil pointers.

const AbsolutePathSchema = z.string().refine(posix.isAbsolute, "expected an absolute path");

/** Fly's default guest: shared-cpu-1x with 256 MB. */
export const GUEST_DEFAULTS = { cpu_kind: "shared", cpus: 1, memory_mb: 256 } as const;

/** The VM size of a machine (Fly's api.MachineGuest); missing fields take Fly's defaults. */
export const MachineGuestSchema = z.looseObject({
  cpu_kind: z.enum(["shared", "performance"]).default(GUEST_DEFAULTS.cpu_kind),
  cpus: z.number().int().min(1).default(GUEST_DEFAULTS.cpus),
  memory_mb: z.number().int().min(1).default(GUEST_DEFAULTS.memory_mb),
  gpus: CountSchema.nullish(),
  gpu_kind: z.string().nullish(),
  host_dedication_id: z.string().nullish(),
  kernel_args: StringListSchema.nullish(),
});

/** How the machine's main process is started (Fly's api.MachineInit). */
export const MachineInitSchema = z.looseObject({
  exec: StringListSchema.nullish(),
  entrypoint: StringListSchema.nullish(),
  cmd: StringListSchema.nullish(),
  tty: z.boolean().nullish(),
  swap_size_mb: CountSchema.nullish(),
  kernel_args: StringListSchema.nullish(),
});

/** Whether the machine is restarted when its main process exits (Fly's api.MachineRestart). */
export const MachineRestartSchema = z.looseObject({
  policy: z.enum(["no", "always", "on-failure"]).nullish(),
  max_retries: CountSchema.nullish(),
});

/** How the machine is stopped (Fly's api.StopConfig). */
export const StopConfigSchema = z.looseObject({
  timeout: DurationSchema.nullish(),
  signal: StopSignalSchema.nullish(),
});

/** A volume mounted into the machine (Fly's api.MachineMount). */
export const MachineMountSchema = z.looseObject({
  volume: z.string().nullish(),
  path: AbsolutePathSchema,
  name: z.string().nullish(),
  size_gb: CountSchema.nullish(),
  encrypted: z.boolean().nullish(),
  add_size_gb: CountSchema.nullish(),
  size_gb_limit: CountSchema.nullish(),
  extend_threshold_percent: CountSchema.nullish(),
});

/**
 * A file written into the machine's root filesystem at every boot (Fly's api.File): the bytes of
 * raw_value (base64), or of the app secret secret_name (whose value is base64, as on Fly), with
 * `mode` (permission bits, 0644 by default). image_config (Fly writes an image's config) is refused.
 */
export const MachineFileSchema = z
  .looseObject({
    guest_path: z.string().superRefine((path, ctx) => {
      const problem = guestPathProblem(path);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
    raw_value: z.string().refine(isBase64, "expected standard base64 with padding").nullish(),
    secret_name: z.string().min(1).nullish(),
    image_config: z
      .null({ error: "image_config is not supported by Hangar: give raw_value or secret_name" })
      .optional(),
    mode: z.number().int().min(0).max(0o777, "expected permission bits, at most 0o777 (511)").nullish(),
  })
  .refine((f) => (f.raw_value != null) !== (f.secret_name != null), {
    message: "expected one of raw_value or secret_name",
  });

/** A process of a multi-process machine (Fly's api.MachineProcess). */
export const MachineProcessSchema = z.looseObject({
  exec: StringListSchema.nullish(),
  entrypoint: StringListSchema.nullish(),
  cmd: StringListSchema.nullish(),
  user: z.string().nullish(),
  env: StringMapSchema.nullish(),
});

/** DNS settings of the machine (Fly's api.DNSConfig). */
export const DnsConfigSchema = z.looseObject({
  skip_registration: z.boolean().nullish(),
  nameservers: StringListSchema.nullish(),
  searches: StringListSchema.nullish(),
  hostname: z.string().nullish(),
});

/** Where the machine exposes Prometheus metrics (Fly's api.MachineMetrics). */
export const MachineMetricsSchema = z.looseObject({
  port: PortSchema.nullish(),
  path: z.string().nullish(),
  https: z.boolean().nullish(),
});

/** Static files the proxy serves from the machine (Fly's api.Static). */
export const StaticSchema = z.looseObject({
  guest_path: z.string(),
  url_prefix: z.string(),
});

/** A machine's configuration (Fly's api.MachineConfig); unknown fields are kept. */
export const MachineConfigSchema = z.looseObject({
  image: ImageSchema,
  env: StringMapSchema.nullish(),
  guest: MachineGuestSchema.nullish().transform((guest) => guest ?? { ...GUEST_DEFAULTS }),
  init: MachineInitSchema.nullish(),
  services: z.array(MachineServiceSchema).nullish(),
  checks: z.record(z.string(), MachineCheckSchema).nullish(),
  restart: MachineRestartSchema.nullish(),
  metadata: StringMapSchema.nullish(),
  auto_destroy: z.boolean().nullish(),
  stop_config: StopConfigSchema.nullish(),
  mounts: z.array(MachineMountSchema).nullish(),
  files: z.array(MachineFileSchema).nullish(),
  processes: z.array(MachineProcessSchema).nullish(),
  schedule: z.enum(["hourly", "daily", "weekly", "monthly"]).nullish(),
  dns: DnsConfigSchema.nullish(),
  statics: z.array(StaticSchema).nullish(),
  metrics: MachineMetricsSchema.nullish(),
  standbys: StringListSchema.nullish(),
  /** Deprecated by Fly in favour of guest. */
  size: z.string().nullish(),
  /** Deprecated by Fly in favour of services[].autostart. */
  disable_machine_autostart: z.boolean().nullish(),
});

/** A validated machine configuration, guest defaults applied. */
export type MachineConfig = z.output<typeof MachineConfigSchema>;
/** A machine configuration as a client sends it. */
export type MachineConfigInput = z.input<typeof MachineConfigSchema>;
export type MachineGuest = z.output<typeof MachineGuestSchema>;
