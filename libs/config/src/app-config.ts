import { z } from "zod";
import { DurationSchema } from "./duration.js";
import { EdgeConfigSchema } from "./edge.js";
import { refineMount } from "./mounts.js";
import { CountSchema, PortSchema, StringListSchema, Uint32Schema } from "./primitives.js";
import { StopSignalSchema } from "./signals.js";
import { MEMORY_SIZE, VM_SIZES } from "./vm-sizes.js";

// The app config of fly.toml (Fly's "App configuration" reference), also read from hangar.toml, in the shape
// normaliseFlyToml gives the older shapes flyctl reads. Tables are strict so that a key nobody reads is
// reported (as a warning, by parseAppConfig) instead of silently doing nothing. Keys flyctl reads that
// Hangar does not act on yet are listed in UNSUPPORTED_KEYS: each one gets a warning.

/** An env or build-arg value: TOML lets people write numbers and booleans, which become strings. */
const EnvValueSchema = z.union([z.string(), z.number(), z.boolean()]).transform(String);
const EnvMapSchema = z.record(z.string(), EnvValueSchema);

/** `auto_stop_machines`: the old boolean form, or what a stopped machine becomes. */
export const AutoStopSchema = z.union([z.boolean(), z.enum(["off", "stop", "suspend"])]);

const ProcessesSchema = StringListSchema;
/** Memory as flyctl reads it: a whole number of MB, or a size such as "512mb", "1gb" or "4G". */
const MemorySchema = z.string().regex(MEMORY_SIZE, 'expected a size such as "512mb" or "1gb"');

const ConcurrencySchema = z.strictObject({
  type: z.enum(["connections", "requests"]).optional(),
  soft_limit: CountSchema.optional(),
  hard_limit: CountSchema.optional(),
});

const TlsOptionsSchema = z.strictObject({
  alpn: StringListSchema.optional(),
  versions: StringListSchema.optional(),
  default_self_signed: z.boolean().optional(),
});

const HttpOptionsSchema = z.strictObject({
  compress: z.boolean().optional(),
  h2_backend: z.boolean().optional(),
  /** Seconds (fly-go's uint32). */
  idle_timeout: Uint32Schema.optional(),
  response: z
    .strictObject({ headers: z.record(z.string(), z.unknown()).optional(), pristine: z.boolean().optional() })
    .optional(),
});

const HeadersSchema = z.record(z.string(), z.string());

/** A check that runs a command in a machine of its own during deploys (flyctl's machine_checks). */
const MachineCheckCommandSchema = z.strictObject({
  command: StringListSchema.optional(),
  image: z.string().optional(),
  entrypoint: StringListSchema.optional(),
  kill_signal: z.string().optional(),
  kill_timeout: DurationSchema.optional(),
});

/** An HTTP check of http_service or a service. */
const HttpCheckSchema = z.strictObject({
  grace_period: DurationSchema.optional(),
  interval: DurationSchema.optional(),
  timeout: DurationSchema.optional(),
  method: z.string().optional(),
  path: z.string().optional(),
  protocol: z.enum(["http", "https"]).optional(),
  tls_skip_verify: z.boolean().optional(),
  tls_server_name: z.string().optional(),
  headers: HeadersSchema.optional(),
  restart_limit: CountSchema.optional(),
});

const TcpCheckSchema = z.strictObject({
  grace_period: DurationSchema.optional(),
  interval: DurationSchema.optional(),
  timeout: DurationSchema.optional(),
  restart_limit: CountSchema.optional(),
});

const HttpServiceSchema = z.strictObject({
  internal_port: PortSchema.optional(),
  force_https: z.boolean().optional(),
  auto_stop_machines: AutoStopSchema.optional(),
  auto_start_machines: z.boolean().optional(),
  min_machines_running: CountSchema.optional(),
  /** Hangar's own: the most machines the autoscaler runs for the service (default 20). */
  max_machines_running: CountSchema.optional(),
  processes: ProcessesSchema.optional(),
  concurrency: ConcurrencySchema.optional(),
  tls_options: TlsOptionsSchema.optional(),
  http_options: HttpOptionsSchema.optional(),
  checks: z.array(HttpCheckSchema).optional(),
  machine_checks: z.array(MachineCheckCommandSchema).optional(),
});

const ServicePortSchema = z.strictObject({
  port: PortSchema.optional(),
  start_port: PortSchema.optional(),
  end_port: PortSchema.optional(),
  handlers: StringListSchema.optional(),
  force_https: z.boolean().optional(),
  tls_options: TlsOptionsSchema.optional(),
  http_options: HttpOptionsSchema.optional(),
  proxy_proto_options: z.strictObject({ version: z.string().optional() }).optional(),
});

const ServiceSchema = z.strictObject({
  protocol: z.enum(["tcp", "udp"]).optional(),
  // flyctl loads a service without one (its setters fill it in); so does Hangar.
  internal_port: PortSchema.optional(),
  processes: ProcessesSchema.optional(),
  ports: z.array(ServicePortSchema).optional(),
  concurrency: ConcurrencySchema.optional(),
  auto_stop_machines: AutoStopSchema.optional(),
  auto_start_machines: z.boolean().optional(),
  min_machines_running: CountSchema.optional(),
  max_machines_running: CountSchema.optional(),
  tcp_checks: z.array(TcpCheckSchema).optional(),
  http_checks: z.array(HttpCheckSchema).optional(),
  script_checks: z.array(z.unknown()).optional(),
  machine_checks: z.array(MachineCheckCommandSchema).optional(),
});

/** A volume the machines of the app mount; sizes and limits are checked as flyctl checks them. */
const MountSchema = z
  .strictObject({
    source: z.string().min(1),
    destination: z.string().startsWith("/", "expected an absolute path"),
    initial_size: z.union([z.string(), z.number().int()]).optional(),
    processes: ProcessesSchema.optional(),
    snapshot_retention: CountSchema.optional(),
    scheduled_snapshots: z.boolean().optional(),
    auto_extend_size_threshold: CountSchema.optional(),
    auto_extend_size_increment: z.string().optional(),
    auto_extend_size_limit: z.string().optional(),
  })
  .superRefine(refineMount);

/** A [[vm]] (or [[compute]]) table: a size, and fields of the guest that override it. */
const VmSchema = z.strictObject({
  size: z
    .string()
    .refine((size) => Object.hasOwn(VM_SIZES, size), {
      message: `expected a VM size: ${Object.keys(VM_SIZES).join(", ")}`,
    })
    .optional(),
  memory: MemorySchema.optional(),
  memory_mb: z.number().int().min(1).optional(),
  max_memory_mb: z.number().int().min(1).optional(),
  cpus: z.number().int().min(1).optional(),
  cpu_kind: z.enum(["shared", "performance"]).optional(),
  gpus: CountSchema.optional(),
  gpu_kind: z.string().optional(),
  kernel_args: z.union([z.string(), StringListSchema]).optional(),
  host_dedication_id: z.string().optional(),
  persist_rootfs: z.enum(["never", "always", "restart"]).optional(),
  processes: ProcessesSchema.optional(),
});

/** The deploy strategies Hangar knows; flyctl reads any string and refuses others at deploy. */
export const DEPLOY_STRATEGIES = ["immediate", "rolling", "bluegreen", "canary"] as const;

const DeploySchema = z.strictObject({
  strategy: z.enum(DEPLOY_STRATEGIES).optional(),
  release_command: z.string().optional(),
  release_command_timeout: DurationSchema.optional(),
  release_command_vm: VmSchema.optional(),
  seed_command: z.string().optional(),
  wait_timeout: DurationSchema.optional(),
  max_unavailable: z.number().min(0).optional(),
});

/** A named top-level check (`[checks.<name>]`). */
const NamedCheckSchema = z.strictObject({
  type: z.enum(["http", "tcp"]),
  port: PortSchema.optional(),
  path: z.string().optional(),
  interval: DurationSchema.optional(),
  timeout: DurationSchema.optional(),
  grace_period: DurationSchema.optional(),
  method: z.string().optional(),
  protocol: z.enum(["http", "https"]).optional(),
  tls_skip_verify: z.boolean().optional(),
  tls_server_name: z.string().optional(),
  headers: HeadersSchema.optional(),
  processes: ProcessesSchema.optional(),
});

const StaticsSchema = z.strictObject({
  guest_path: z.string().optional(),
  url_prefix: z.string(),
  tigris_bucket: z.string().optional(),
  index_document: z.string().optional(),
});

const MetricsSchema = z.strictObject({
  // flyctl loads a [metrics] without a port (experimental.metrics_path alone gives one).
  port: PortSchema.optional(),
  path: z.string().optional(),
  https: z.boolean().optional(),
  processes: ProcessesSchema.optional(),
});

/** A file written into the machine at boot: from the fly.toml, a local file or a secret. */
const FileSchema = z.strictObject({
  guest_path: z.string().startsWith("/", "expected an absolute path"),
  raw_value: z.string().optional(),
  local_path: z.string().optional(),
  secret_name: z.string().optional(),
  processes: ProcessesSchema.optional(),
});

const RestartSchema = z.strictObject({
  policy: z.enum(["never", "always", "on-failure"]),
  retries: CountSchema.optional(),
  processes: ProcessesSchema.optional(),
});

const BuildSchema = z.strictObject({
  dockerfile: z.string().optional(),
  image: z.string().optional(),
  "build-target": z.string().optional(),
  args: EnvMapSchema.optional(),
  ignorefile: z.string().optional(),
  builder: z.unknown().optional(),
  buildpacks: z.unknown().optional(),
  builtin: z.unknown().optional(),
  settings: z.unknown().optional(),
  compose: z.unknown().optional(),
  compression: z.unknown().optional(),
  compression_level: z.unknown().optional(),
});

const ExperimentalSchema = z.strictObject({
  cmd: StringListSchema.optional(),
  entrypoint: StringListSchema.optional(),
  exec: StringListSchema.optional(),
  auto_rollback: z.boolean().optional(),
  enable_consul: z.unknown().optional(),
  enable_etcd: z.unknown().optional(),
  lazy_load_images: z.unknown().optional(),
  attached: z.unknown().optional(),
  machine_config: z.unknown().optional(),
});

/** fly.toml / hangar.toml, as parseAppConfig validates it. */
export const AppConfigSchema = z.strictObject({
  // Any string, as flyctl loads it: templates ship "$APP_NAME" or "<your-app>" for `fly launch` or -a to
  // replace, and old apps have names Fly no longer allows. The CLI checks it where it names the app.
  app: z.string().optional(),
  primary_region: z.string().optional(),
  kill_signal: StopSignalSchema.optional(),
  kill_timeout: DurationSchema.optional(),
  swap_size_mb: CountSchema.optional(),
  console_command: z.string().optional(),
  host_dedication_id: z.string().optional(),
  build: BuildSchema.optional(),
  env: EnvMapSchema.optional(),
  http_service: HttpServiceSchema.optional(),
  services: z.array(ServiceSchema).optional(),
  mounts: z.array(MountSchema).optional(),
  processes: z
    .record(z.string().regex(/^[a-z0-9_-]+$/, "expected a lowercase process group name"), z.string())
    .optional(),
  vm: z.array(VmSchema).optional(),
  deploy: DeploySchema.optional(),
  checks: z.record(z.string(), NamedCheckSchema).optional(),
  statics: z.array(StaticsSchema).optional(),
  metrics: z.array(MetricsSchema).optional(),
  restart: z.array(RestartSchema).optional(),
  experimental: ExperimentalSchema.optional(),
  files: z.array(FileSchema).optional(),
  machine_checks: z.array(MachineCheckCommandSchema).optional(),
  machine_config: z.unknown().optional(),
  container: z.unknown().optional(),
  /** Hangar's: the app is an edge app (JavaScript run in the proxies), with no machines of its own. */
  edge: EdgeConfigSchema.optional(),
});

/**
 * Keys flyctl reads that Hangar loads and keeps but does not act on yet: each one present gets one
 * warning (a GPU in [[vm]] gets its own). docs/app-config.md lists them.
 */
export const UNSUPPORTED_KEYS: readonly string[] = [
  "build.builder",
  "build.buildpacks",
  "build.builtin",
  "build.settings",
  "build.compose",
  "build.compression",
  "build.compression_level",
  "experimental.lazy_load_images",
  "experimental.machine_config",
  "machine_config",
  "container",
  "services.script_checks",
  // The proxy acts on http_options' response, compress and idle_timeout; it speaks HTTP/1.1 to machines.
  "http_service.http_options.h2_backend",
  "services.ports.http_options.h2_backend",
  // The proxy serves [[statics]] from the release's image; Fly serves a tigris_bucket from the bucket.
  "statics.tigris_bucket",
];

/** A parsed and validated app config. */
export type AppConfig = z.output<typeof AppConfigSchema>;
export type AppService = z.output<typeof ServiceSchema>;
export type AppHttpService = z.output<typeof HttpServiceSchema>;
export type AppVm = z.output<typeof VmSchema>;
export type AppMountConfig = z.output<typeof MountSchema>;
export type AppFile = z.output<typeof FileSchema>;
