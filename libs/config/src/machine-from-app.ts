import type { AppConfig, AppHttpService, AppService, AppVm } from "./app-config.js";
import { machineFile, type ReleasedAppFile } from "./files.js";
import { GUEST_DEFAULTS, type MachineConfigInput } from "./machine-config.js";
import { machineMount } from "./mounts.js";
import { splitShellWords } from "./shell-words.js";
import { DEFAULT_GPU_VM_SIZE, DEFAULT_VM_SIZE, parseMemoryMb, VM_SIZES } from "./vm-sizes.js";

/** The process group of an app without [processes], as Fly names it. */
export const DEFAULT_PROCESS_GROUP = "app";

/** Fly's default internal port of http_service. */
const DEFAULT_INTERNAL_PORT = 8080;

type Input = MachineConfigInput;
type ServiceInput = NonNullable<Input["services"]>[number];
type CheckInput = NonNullable<Input["checks"]>[string];
type Duration = string | number;

/** What machineConfigFromApp is building a machine for. */
export interface MachineFromAppOptions {
  /** The process group; defaultProcessGroup(app) by default. */
  processGroup?: string;
  /**
   * The release the machine belongs to, recorded in its metadata as hangar_release. Given, the config
   * is a deploy's: as flyctl's deploy sets it on every machine it launches, the top-level
   * host_dedication_id is the guest's (with or without a [[vm]]).
   */
  release?: number | string;
}

/** The process groups an app config defines: the names in [processes] sorted (as flyctl lists them), or just "app". */
export function processGroups(app: AppConfig): string[] {
  const names = Object.keys(app.processes ?? {}).sort();
  return names.length > 0 ? names : [DEFAULT_PROCESS_GROUP];
}

/**
 * The group that sections without `processes` belong to, as flyctl picks it: "app" if there is one,
 * else the first by name.
 */
export function defaultProcessGroup(app: AppConfig): string {
  const groups = processGroups(app);
  return groups.includes(DEFAULT_PROCESS_GROUP) ? DEFAULT_PROCESS_GROUP : (groups[0] as string);
}

/** The process group a config of `app` is not defined for. */
export class UnknownProcessGroupError extends Error {
  override name = "UnknownProcessGroupError";
  readonly code = "unknown_process_group";
  constructor(group: string, known: string[]) {
    super(`process group ${group} is not defined in [processes] (defined: ${known.join(", ")})`);
  }
}

/** The config (Machines API MachineConfig) of a machine of `app`'s process group running `image`. */
export function machineConfigFromApp(app: AppConfig, image: string, opts: MachineFromAppOptions = {}): Input {
  const groups = processGroups(app);
  const defaultGroup = defaultProcessGroup(app);
  const group = opts.processGroup ?? defaultGroup;
  const command = app.processes?.[group];
  if (app.processes && Object.keys(app.processes).length > 0 && command === undefined) {
    throw new UnknownProcessGroupError(group, groups);
  }
  // flyctl's Flatten: a section without `processes` (or with an empty list) is the default group's only.
  const forGroup = (processes: string[] | undefined): boolean =>
    processes === undefined || processes.length === 0 ? group === defaultGroup : processes.includes(group);
  const inGroup = <T extends { processes?: string[] | undefined }>(items: T[] | undefined): T[] =>
    (items ?? []).filter((item) => forGroup(item.processes));

  const services = [
    ...(app.http_service && inGroup([app.http_service]).length > 0 ? [httpService(app.http_service)] : []),
    ...inGroup(app.services).map(service),
  ];
  const checks = Object.entries(app.checks ?? {}).filter(([, c]) => inGroup([c]).length > 0);
  const vm = vmForGroup(app.vm, group);
  // flyctl applies each matching [[restart]] in turn: the last one is the policy.
  const restart = inGroup(app.restart).at(-1);
  const metrics = inGroup(app.metrics)[0];
  const mounts = inGroup(app.mounts);
  const files = inGroup<ReleasedAppFile>(app.files).map(machineFile);
  const statics = (app.statics ?? []).filter((s) => s.guest_path !== undefined);
  const words = command ? splitShellWords(command) : [];
  const init = compact({
    cmd: words.length > 0 ? words : app.experimental?.cmd,
    entrypoint: app.experimental?.entrypoint,
    exec: app.experimental?.exec,
    swap_size_mb: app.swap_size_mb,
  });

  return compact({
    image,
    env: {
      ...app.env,
      // Fly sets both for every machine a deploy creates.
      FLY_PROCESS_GROUP: group,
      ...(app.primary_region ? { PRIMARY_REGION: app.primary_region } : {}),
    },
    init: Object.keys(init).length > 0 ? init : undefined,
    // As flyctl's ToMachineConfig: the top-level host_dedication_id is the default of each [[vm]]; its
    // deploy then sets it on every machine's guest (the release's config, below).
    guest:
      opts.release !== undefined && app.host_dedication_id
        ? { ...(vm ? guest(vm, app.host_dedication_id) : {}), host_dedication_id: app.host_dedication_id }
        : vm
          ? guest(vm, app.host_dedication_id)
          : undefined,
    services: services.length > 0 ? services : undefined,
    checks:
      checks.length > 0
        ? Object.fromEntries(
            checks.map(([name, c]) => [
              name,
              // flyctl upper-cases the method of a top-level check (not of a service's).
              check({ ...c, method: c.method?.toUpperCase() }, c.type, c.port ?? checkPort(app, name, group)),
            ]),
          )
        : undefined,
    restart: restart
      ? compact({
          policy: restart.policy === "never" ? ("no" as const) : restart.policy,
          max_retries: restart.retries,
        })
      : undefined,
    stop_config:
      app.kill_signal !== undefined || app.kill_timeout !== undefined
        ? compact({ signal: app.kill_signal, timeout: goDuration(app.kill_timeout) })
        : undefined,
    mounts: mounts.length > 0 ? mounts.map(machineMount) : undefined,
    files: files.length > 0 ? files : undefined,
    statics:
      statics.length > 0
        ? statics.map((s) =>
            compact({
              guest_path: s.guest_path as string,
              url_prefix: s.url_prefix,
              tigris_bucket: s.tigris_bucket,
              index_document: s.index_document,
            }),
          )
        : undefined,
    metrics: metrics ? compact({ port: metrics.port, path: metrics.path, https: metrics.https }) : undefined,
    metadata: {
      fly_process_group: group,
      ...(opts.release !== undefined ? { hangar_release: String(opts.release) } : {}),
    },
  }) as Input;
}

/** A top-level check without a port checks the group's http_service (flyctl refuses one without either). */
function checkPort(app: AppConfig, name: string, group: string): number {
  const hs = app.http_service;
  if (hs && (hs.processes === undefined || hs.processes.length === 0 || hs.processes.includes(group))) {
    return hs.internal_port ?? DEFAULT_INTERNAL_PORT;
  }
  throw new CheckWithoutPortError(name, group);
}

/** A top-level check has no port and its process group no http_service to take one from. */
export class CheckWithoutPortError extends Error {
  override name = "CheckWithoutPortError";
  readonly code = "check_without_port";
  constructor(check: string, group: string) {
    super(
      `check ${check} of process group ${group} has no port set and the group has no http_service to take it from`,
    );
  }
}

/**
 * The [[vm]] of a group, as flyctl's ComputeForGroup picks it: of the sections that name the group or name
 * no group at all, the last that names it, else the first.
 */
function vmForGroup(vms: AppVm[] | undefined, group: string): AppVm | undefined {
  const candidates = (vms ?? []).filter(
    (vm) => (vm.processes ?? []).length === 0 || vm.processes?.includes(group),
  );
  return candidates.findLast((vm) => vm.processes?.includes(group)) ?? candidates[0];
}

function httpService(hs: AppHttpService): ServiceInput {
  return compact({
    protocol: "tcp" as const,
    internal_port: hs.internal_port ?? DEFAULT_INTERNAL_PORT,
    ports: [
      compact({
        port: 80,
        handlers: ["http"],
        force_https: hs.force_https ?? false,
        http_options: hs.http_options,
      }),
      compact({
        port: 443,
        handlers: ["http", "tls"], // flyctl's order (HTTPService.ToService)
        tls_options: hs.tls_options,
        http_options: hs.http_options,
      }),
    ],
    concurrency: hs.concurrency,
    autostop: hs.auto_stop_machines,
    autostart: hs.auto_start_machines,
    min_machines_running: hs.min_machines_running,
    max_machines_running: hs.max_machines_running,
    checks: hs.checks?.map((c) => check(c, "http")),
  });
}

function service(s: AppService): ServiceInput {
  const checks = [
    ...(s.tcp_checks ?? []).map((c) => check(c, "tcp")),
    ...(s.http_checks ?? []).map((c) => check(c, "http")),
  ];
  return compact({
    protocol: s.protocol ?? "tcp",
    internal_port: s.internal_port,
    ports: s.ports?.map((p) => compact({ ...p })),
    concurrency: s.concurrency,
    autostop: s.auto_stop_machines,
    autostart: s.auto_start_machines,
    min_machines_running: s.min_machines_running,
    max_machines_running: s.max_machines_running,
    checks: checks.length > 0 ? checks : undefined,
  });
}

interface AnyCheck {
  grace_period?: Duration | undefined;
  interval?: Duration | undefined;
  timeout?: Duration | undefined;
  method?: string | undefined;
  path?: string | undefined;
  protocol?: "http" | "https" | undefined;
  tls_skip_verify?: boolean | undefined;
  tls_server_name?: string | undefined;
  headers?: Record<string, string> | undefined;
}

function check(c: AnyCheck, type: "http" | "tcp", port?: number): CheckInput {
  return compact({
    type,
    port,
    interval: goDuration(c.interval),
    timeout: goDuration(c.timeout),
    grace_period: goDuration(c.grace_period),
    method: c.method,
    path: c.path,
    protocol: c.protocol,
    tls_skip_verify: c.tls_skip_verify,
    tls_server_name: c.tls_server_name,
    headers: c.headers
      ? Object.entries(c.headers).map(([name, value]) => ({ name, values: [value] }))
      : undefined,
  });
}

/** Guest fields of a machine as the Machines API gives them (memory in MB). */
type Guest = NonNullable<Input["guest"]>;

/**
 * The guest of an app's release_command machine, as flyctl's deploy chooses it: `[deploy]
 * release_command_vm` (read as a [[vm]]); else the guest of the default process group's machine with
 * the most memory (`defaultGroupGuests`, the live machines' guests); else shared-cpu-2x. [[vm]] is not
 * read directly: on a first deploy the release machine is shared-cpu-2x whatever it says. The
 * top-level host_dedication_id goes on it in every case, as flyctl's.
 */
export function releaseCommandGuest(app: AppConfig, defaultGroupGuests: readonly Guest[]): Guest {
  const vm = app.deploy?.release_command_vm;
  const chosen = vm
    ? guest(vm, app.host_dedication_id)
    : (defaultGroupGuests.reduce<Guest | undefined>(
        (most, g) => (most === undefined || (g.memory_mb ?? 0) > (most.memory_mb ?? 0) ? g : most),
        undefined,
      ) ?? guest({ size: RELEASE_COMMAND_VM_SIZE }, undefined));
  return app.host_dedication_id ? { ...chosen, host_dedication_id: app.host_dedication_id } : chosen;
}

/** flyctl's release machine on an app with no machines yet. */
const RELEASE_COMMAND_VM_SIZE = "shared-cpu-2x";

/**
 * The guest of a [[vm]] as flyctl's computeToGuest builds it: the size's preset (shared-cpu-1x, or
 * performance-8x for a GPU without a size), then `memory`, then every guest field the table sets.
 */
function guest(vm: AppVm, hostDedicationId: string | undefined): NonNullable<Input["guest"]> {
  const sizeName = vm.size ?? (vm.gpu_kind ? DEFAULT_GPU_VM_SIZE : DEFAULT_VM_SIZE);
  const base = VM_SIZES[sizeName] ?? GUEST_DEFAULTS;
  const memory = vm.memory_mb ?? (vm.memory !== undefined ? parseMemoryMb(vm.memory) : base.memory_mb);
  return compact({
    cpu_kind: vm.cpu_kind ?? base.cpu_kind,
    cpus: vm.cpus ?? base.cpus,
    memory_mb: memory,
    gpus: vm.gpus ?? ("gpus" in base ? base.gpus : undefined),
    gpu_kind: vm.gpu_kind ?? ("gpu_kind" in base ? base.gpu_kind : undefined),
    host_dedication_id: vm.host_dedication_id ?? hostDedicationId,
    kernel_args:
      typeof vm.kernel_args === "string" ? vm.kernel_args.split(/\s+/).filter(Boolean) : vm.kernel_args,
  });
}

/** Durations go to machines as Go duration strings; fly.toml may give a number of seconds. */
function goDuration(value: Duration | undefined): string | undefined {
  return typeof value === "number" ? `${value}s` : value;
}

/** The object without its undefined fields, so the config sent holds only what the app config says. */
function compact<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}
