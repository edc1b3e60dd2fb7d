import { readFile, stat } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import type { ExistingMachine } from "@hangar/domain";
import type { ImageConfig } from "@hangar/oci";
import { admitDirImage } from "./dir-image.js";
import {
  DEFAULT_GUEST,
  type GuestSize,
  type SandboxNetwork,
  type SandboxSpec,
  type VolumeMount,
} from "./driver/mod.js";
import type { FileConfig } from "./machine-files.js";

/** A machine check as Fly's config states it. */
export interface CheckConfig {
  type: "http" | "tcp";
  port?: number;
  path?: string;
  method?: string;
  interval?: string;
  timeout?: string;
  grace_period?: string;
  headers?: Array<{ name: string; values: string[] }>;
}

/**
 * A machine's mount of a volume (the gateway resolved it to an id): the driver's VolumeMount (which
 * volume, where) and how it grows.
 */
export interface VolumeMountConfig extends VolumeMount {
  extend_threshold_percent?: number;
  add_size_gb?: number;
  size_gb_limit?: number;
}

/** The parts of a stored machine config the host agent acts on. */
export interface AgentConfig {
  image: string;
  env: Record<string, string>;
  init: { cmd?: string[]; entrypoint?: string[]; exec?: string[]; swap_size_mb?: number | null };
  restart: { policy: "no" | "always" | "on-failure"; max_retries?: number };
  checks: Record<string, CheckConfig>;
  /** The first service's internal port: the port checks and the proxy mean. */
  internalPort: number | undefined;
  stop_config?: { signal?: string; timeout?: string | number };
  stopTimeoutS: number;
  /** The machine's size, with Fly's defaults (shared-cpu-1x): what its cgroups hold it to. */
  guest: GuestSize;
  /** Its volumes' mounts; a mount without a volume id (not resolved) is left out. */
  mounts: VolumeMountConfig[];
  /** The files written into its root filesystem at boot (machineFiles decodes them). */
  files: FileConfig[];
}

function durationSeconds(v: string | number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v === "number") return v;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) return fallback;
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  return unit === "ms" ? n / 1000 : unit === "m" ? n * 60 : unit === "h" ? n * 3600 : n;
}

/**
 * Reads the stored config (validated by the gateway when it was accepted) into what the agent uses,
 * with Fly's defaults: restart on-failure, stop by SIGINT with a 5 s timeout.
 */
export function parseMachineConfig(configJson: string): AgentConfig {
  const c = JSON.parse(configJson || "{}") as Record<string, unknown> & {
    image?: string;
    env?: Record<string, string>;
    init?: AgentConfig["init"];
    restart?: Partial<AgentConfig["restart"]>;
    checks?: Record<string, CheckConfig>;
    services?: Array<{ internal_port?: number; checks?: CheckConfig[] }>;
    guest?: { cpus?: number; cpu_kind?: GuestSize["cpuKind"]; memory_mb?: number };
    stop_config?: AgentConfig["stop_config"];
    mounts?: Array<Partial<VolumeMountConfig> | null>;
    files?: FileConfig[] | null;
  };
  const checks: Record<string, CheckConfig> = { ...(c.checks ?? {}) };
  for (const [i, s] of (c.services ?? []).entries()) {
    for (const [j, check] of (s.checks ?? []).entries()) {
      checks[`servicecheck-${i}-${j}`] = { ...check, port: check.port ?? s.internal_port };
    }
  }
  return {
    image: c.image ?? "",
    env: c.env ?? {},
    init: c.init ?? {},
    restart: {
      policy: c.restart?.policy ?? "on-failure",
      ...(c.restart?.max_retries !== undefined ? { max_retries: c.restart.max_retries } : {}),
    },
    checks,
    internalPort: c.services?.[0]?.internal_port,
    ...(c.stop_config ? { stop_config: c.stop_config } : {}),
    stopTimeoutS: durationSeconds(c.stop_config?.timeout, 5),
    guest: {
      cpus: c.guest?.cpus ?? DEFAULT_GUEST.cpus,
      cpuKind: c.guest?.cpu_kind ?? DEFAULT_GUEST.cpuKind,
      memoryMb: c.guest?.memory_mb ?? DEFAULT_GUEST.memoryMb,
      ...(typeof c.init?.swap_size_mb === "number" && c.init.swap_size_mb > 0
        ? { swapMb: c.init.swap_size_mb }
        : {}),
    },
    mounts: (c.mounts ?? []).flatMap((m) =>
      m && typeof m.volume === "string" && typeof m.path === "string"
        ? [{ ...m, volume: m.volume, path: m.path }]
        : [],
    ),
    files: c.files ?? [],
  };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** A Node folder's default command: package.json's main, else the usual entry file names. */
async function defaultCommand(dir: string): Promise<string[]> {
  const pkgPath = join(dir, "package.json");
  if (await exists(pkgPath)) {
    const pkg = JSON.parse(await readFile(pkgPath, "utf8")) as { main?: string };
    if (pkg.main) return ["node", pkg.main];
  }
  for (const entry of ["server.js", "index.js", "main.js", "app.js", "server.mjs", "index.mjs"]) {
    if (await exists(join(dir, entry))) return ["node", entry];
  }
  throw new Error(
    `no command for ${dir}: set config.init.cmd, or give the folder a package.json "main" or a server.js/index.js`,
  );
}

/** What to run for a machine: argv, folder, environment and the image reference it came from. */
export interface RunnableConfig {
  cmd: string[];
  /** A host folder for `dir:` images; the folder inside the root filesystem for sandboxed ones. */
  cwd: string;
  env: Record<string, string>;
  imageRef: string;
  /** Set for OCI images: the driver runs `cmd` in a sandbox on the image's root filesystem. */
  sandbox?: SandboxSpec;
  /** The port the app listens on, when the driver must not allocate one (own network namespace). */
  port?: number;
  /** The config's guest size (with Fly's defaults). */
  guest: GuestSize;
  /** The config's volume mounts, as the driver takes them. */
  mounts: VolumeMountConfig[];
}

/** An OCI image as the host holds it: resolved in the registry, its layers unpacked. */
export interface PulledImage {
  repository: string;
  /** The manifest digest. */
  digest: string;
  config: ImageConfig;
  /** Unpacked layer folders, top layer first (overlayfs lowerdir order). */
  lowers: string[];
}

/** Fetches OCI images onto the host. */
/** Whose machine an image is pulled for: its org, and how to find which org holds an app. */
export interface ImageOwner {
  org: string;
  orgOf(app: string): Promise<string | undefined>;
}

export interface ImageSource {
  /** With `owner`, an image of another org's app is refused as not found. */
  pull(ref: string, owner?: ImageOwner): Promise<PulledImage>;
}

/** Whether this host runs OCI images, decided once at agent start. */
export type SandboxCapability =
  | { ok: true; network: SandboxNetwork }
  | { ok: false /** What is missing, said so that an operator knows what to do. */; reason: string };

/** What resolving a machine's run needs beyond its config. */
export interface RunContext {
  /** Absent when the agent runs only `dir:` images. */
  sandbox?: SandboxCapability;
  /** Absent when the host cannot sandbox (OCI images then fail before any pull). */
  images?: ImageSource;
  /** HANGAR_DIR_IMAGE_ROOTS: the folders `dir:` images may run from; none refuses them. */
  dirImageRoots?: readonly string[];
  /** The machine's org, so that its image is checked at every pull, not only when it was created. */
  owner?: ImageOwner;
}

/** An OCI image that this host cannot run, or whose config gives nothing to run. */
export class ImageRunError extends Error {
  override name = "ImageRunError";
  readonly code = "IMAGE_NOT_RUNNABLE";
}

const DEFAULT_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The variables Fly sets in every machine (FLY_PRIVATE_IP and PORT come from the driver). */
function flyEnv(m: ExistingMachine, image: string): Record<string, string> {
  return {
    FLY_APP_NAME: m.app,
    FLY_MACHINE_ID: m.machineId,
    FLY_ALLOC_ID: m.machineId,
    FLY_REGION: m.region,
    FLY_IMAGE_REF: image,
    FLY_MACHINE_VERSION: m.instanceId,
    FLY_PROCESS_GROUP: "app",
  };
}

/**
 * Resolves a machine's command the way Fly's init does: exec replaces everything, otherwise
 * entrypoint + cmd. `dir:<absolute path>` images run that folder as it is (development, only under
 * the context's dirImageRoots); any other
 * image is an OCI reference, pulled from Hangar's registry and run sandboxed on its own rootfs.
 */
export async function resolveRun(m: ExistingMachine, ctx?: RunContext): Promise<RunnableConfig> {
  const cfg = parseMachineConfig(m.configJson);
  if (!cfg.image.startsWith("dir:")) {
    if (!ctx?.sandbox)
      throw new ImageRunError(
        `image ${cfg.image} cannot run: this host agent runs only dir:<absolute path> images`,
      );
    if (!ctx.sandbox.ok)
      throw new ImageRunError(`image ${cfg.image} cannot run on this host: ${ctx.sandbox.reason}`);
    if (!ctx.images)
      throw new ImageRunError(`image ${cfg.image} cannot run: this host agent has no image registry`);
    const image = await ctx.images.pull(cfg.image, ctx.owner);
    return imageRun(m, cfg, image, ctx.sandbox.network);
  }
  const cwd = await admitDirImage(cfg, ctx?.dirImageRoots ?? []);
  const cmd = initCommand(cfg.init, [], []) ?? (await defaultCommand(cwd));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: process.env.HOME ?? "/root",
    ...flyEnv(m, cfg.image),
    ...cfg.env,
  };
  return { cmd, cwd, env, imageRef: cfg.image, guest: cfg.guest, mounts: cfg.mounts };
}

/**
 * Fly's init rules: `exec` replaces everything; otherwise `entrypoint` and `cmd` each replace the
 * image's ENTRYPOINT and CMD. Undefined when nothing is left to run.
 */
export function initCommand(
  init: AgentConfig["init"],
  imageEntrypoint: readonly string[],
  imageCmd: readonly string[],
): string[] | undefined {
  if (init.exec && init.exec.length > 0) return [...init.exec];
  const entrypoint = init.entrypoint && init.entrypoint.length > 0 ? init.entrypoint : imageEntrypoint;
  const cmd = init.cmd && init.cmd.length > 0 ? init.cmd : imageCmd;
  const argv = [...entrypoint, ...cmd];
  return argv.length > 0 ? argv : undefined;
}

/** An image config's Env ("KEY=value" lines) as a record; a later line wins, as in Docker. */
export function imageEnv(lines: readonly string[] | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of lines ?? []) {
    const eq = line.indexOf("=");
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
    else if (eq < 0 && line !== "") env[line] = "";
  }
  return env;
}

/**
 * The run of a machine of a pulled OCI image (pure): the image's ENTRYPOINT/CMD under Fly's
 * overrides, its WorkingDir and USER, and its Env under Fly's variables, under config.env.
 */
export function imageRun(
  m: ExistingMachine,
  cfg: AgentConfig,
  image: PulledImage,
  network: SandboxNetwork,
): RunnableConfig {
  const run = image.config.config ?? {};
  const cmd = initCommand(cfg.init, run.Entrypoint ?? [], run.Cmd ?? []);
  if (!cmd) {
    throw new ImageRunError(
      `image ${cfg.image} has no ENTRYPOINT or CMD: set config.init.cmd (or init.exec) to what the machine runs`,
    );
  }
  const env: Record<string, string> = {
    PATH: DEFAULT_IMAGE_PATH,
    ...imageEnv(run.Env),
    ...flyEnv(m, cfg.image),
    ...cfg.env,
  };
  const cwd = run.WorkingDir && run.WorkingDir !== "" ? run.WorkingDir : "/";
  if (!isAbsolute(cwd))
    throw new ImageRunError(`image ${cfg.image}: WorkingDir ${cwd} is not an absolute path`);
  const sandbox: SandboxSpec = {
    image: `${image.repository}@${image.digest}`,
    lowers: image.lowers,
    user: run.User ?? "",
    network,
  };
  // In its own network namespace the app listens where the config says it does (Fly's internal_port).
  const port = network === "netns" ? (cfg.internalPort ?? exposedPort(run.ExposedPorts) ?? 8080) : undefined;
  return {
    cmd,
    cwd,
    env,
    imageRef: cfg.image,
    sandbox,
    ...(port !== undefined ? { port } : {}),
    guest: cfg.guest,
    mounts: cfg.mounts,
  };
}

/** The first TCP port an image EXPOSEs ("8080/tcp" or "8080"). */
function exposedPort(ports: Record<string, unknown> | undefined): number | undefined {
  for (const key of Object.keys(ports ?? {})) {
    const m = /^(\d+)(?:\/tcp)?$/.exec(key);
    if (m) return Number(m[1]);
  }
  return undefined;
}
