// The whole platform as local processes: every service started as its own Node process against one
// NATS server, each ready once its /health answers. `npm start` uses it, and so do the end-to-end
// tests, the fault test (which kill -9s services and starts them again) and the benchmarks.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import {
  credsFileOf,
  type NatsCredentials,
  natsAuthOptions,
  natsUserName,
  natsUsers,
  OPERATOR_USER,
  writeNatsCredentials,
} from "@hangar/service";
import { freePort } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { SERVICE_CONFIGS } from "./service-configs.js";
import { HANGAR_SERVICES, type HangarService } from "./service-connections.js";

export const repoRoot = fileURLToPath(new URL("..", import.meta.url));

export type ServiceName = HangarService;
/**
 * Every service, in the order the platform stops them backwards: placement, the host agent and the
 * volume service first, then the postgres manager, the webhooks service, the builder, the gateway,
 * the proxy, the scheduler and the monitor. They start all at once (startPlatform).
 */
export const SERVICES: ServiceName[] = [...HANGAR_SERVICES];

/** The services that use Postgres (HANGAR_DATABASE_URL): npm start runs Postgres only when one does. */
export const POSTGRES_SERVICES: readonly ServiceName[] = ["postgres-manager"];

export interface PlatformOptions {
  home: string;
  natsUrl: string;
  /** The NATS users' seeds (platformNatsCredentials): each service connects as its own user. */
  natsCreds?: NatsCredentials;
  /** HANGAR_GATEWAY_TOKEN_KEY: the root key API tokens are signed with (32+ random bytes, base64). */
  tokenKey: string;
  region?: string;
  gatewayPort: number;
  proxyPort: number;
  monitorPort: number;
  placementOpsPort: number;
  hostOpsPort: number;
  proxyOpsPort: number;
  /** The builder's /health and /metrics; a free port when not given. */
  builderOpsPort?: number;
  /** The scheduler's (autoscaler's) /health and /metrics; a free port when not given. */
  schedulerOpsPort?: number;
  /** The volume service's /health and /metrics; a free port when not given. */
  volumeOpsPort?: number;
  /** The postgres manager's /health and /metrics; a free port when not given. */
  postgresManagerOpsPort?: number;
  /** The webhooks service's /health and /metrics; a free port when not given. */
  webhooksOpsPort?: number;
  hostId?: string;
  hostCpus?: number;
  hostMemoryMb?: number;
  /**
   * HANGAR_DIR_IMAGE_ROOTS of the gateway and the host agent: the folders whose `dir:` images may
   * run. None (the default) refuses `dir:` images; each launcher lists the example folders it runs.
   */
  dirImageRoots?: readonly string[];
  /**
   * HANGAR_SECRETS_KEY_FILE of the gateway, the builder, the host agents and the proxy: the secrets master key (base64, mode
   * 0600). Without it, app secrets are off.
   */
  secretsKeyFile?: string;
  /** Extra environment per service. */
  env?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Extra environment for every service, under `env` (e.g. OTEL_EXPORTER_OTLP_ENDPOINT of a test's receiver). */
  allEnv?: Record<string, string>;
  logLevel?: string;
  /** Where service output goes: a folder for one log file per service (default <home>/logs). */
  logDir?: string;
}

export interface ServiceHandle {
  name: ServiceName;
  readonly pid: number | undefined;
  healthUrl: string;
  /** Sends a signal (default SIGKILL) and waits for the process to end. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again and waits until it is healthy. */
  restart(): Promise<void>;
  /** Resolves with how the current process ended ("exit code 1", "killed by SIGKILL"). */
  exited(): Promise<string>;
}

export interface Platform {
  apiUrl: string;
  proxyUrl: string;
  monitorUrl: string;
  hostId: string;
  hostStateDir: string;
  services: Record<ServiceName, ServiceHandle>;
  /** Stops every service (SIGTERM, then SIGKILL after 10 s). */
  stop(): Promise<void>;
}

type ResolvedOptions = PlatformOptions & {
  builderOpsPort: number;
  schedulerOpsPort: number;
  volumeOpsPort: number;
  postgresManagerOpsPort: number;
  webhooksOpsPort: number;
};

/** The ops ports of the services a lone host agent or gateway does not start: not its business. */
const NO_OTHER_OPS_PORTS = {
  builderOpsPort: 0,
  schedulerOpsPort: 0,
  volumeOpsPort: 0,
  postgresManagerOpsPort: 0,
  webhooksOpsPort: 0,
} as const;

function serviceEnv(
  name: ServiceName,
  o: ResolvedOptions,
  hostId: string,
  hostStateDir: string,
): Record<string, string> {
  const common = {
    HANGAR_NATS_URL: o.natsUrl,
    ...(o.natsCreds ? { HANGAR_NATS_CREDS: credsFileOf(o.natsCreds.dir, natsUserName(name, hostId)) } : {}),
    HANGAR_REGION: o.region ?? "local",
    LOG_LEVEL: o.logLevel ?? "info",
  };
  // Always set, empty for none: a value in the launcher's own environment must not turn them on.
  const dirImageRoots = (o.dirImageRoots ?? []).join(":");
  const secretsKey = o.secretsKeyFile ? { HANGAR_SECRETS_KEY_FILE: o.secretsKeyFile } : {};
  // Each service's names come from its schema: a name it does not have fails to compile.
  const own: Record<ServiceName, () => Record<string, string>> = {
    placement: () =>
      SERVICE_CONFIGS.placement.toEnv({ ...common, HANGAR_PLACEMENT_OPS_PORT: o.placementOpsPort }),
    "host-agent": () =>
      SERVICE_CONFIGS["host-agent"].toEnv({
        ...common,
        HANGAR_HOST_AGENT_ID: hostId,
        HANGAR_HOST_AGENT_STATE_DIR: hostStateDir,
        HANGAR_HOST_AGENT_OPS_PORT: o.hostOpsPort,
        HANGAR_HOST_AGENT_CPUS: o.hostCpus,
        HANGAR_HOST_AGENT_MEMORY_MB: o.hostMemoryMb,
        HANGAR_DIR_IMAGE_ROOTS: dirImageRoots,
        ...secretsKey,
      }),
    volume: () => SERVICE_CONFIGS.volume.toEnv({ ...common, HANGAR_VOLUME_OPS_PORT: o.volumeOpsPort }),
    // It seals the cluster apps' credentials and opens the member agents' token: the secrets key.
    "postgres-manager": () =>
      SERVICE_CONFIGS["postgres-manager"].toEnv({
        ...common,
        HANGAR_POSTGRES_MANAGER_OPS_PORT: o.postgresManagerOpsPort,
        ...secretsKey,
      }),
    // It seals webhooks' signing secrets and opens them to sign deliveries: the secrets key.
    webhooks: () =>
      SERVICE_CONFIGS.webhooks.toEnv({
        ...common,
        HANGAR_WEBHOOKS_OPS_PORT: o.webhooksOpsPort,
        ...secretsKey,
      }),
    builder: () =>
      SERVICE_CONFIGS.builder.toEnv({
        ...common,
        HANGAR_BUILDER_OPS_PORT: o.builderOpsPort,
        HANGAR_BUILDER_DIR: join(o.home, "builder"),
        // A host that trusts extra roots for its own TLS (an inspecting egress proxy) lets builds trust them too.
        HANGAR_BUILDER_CA_FILE: process.env.HANGAR_BUILDER_CA_FILE ?? process.env.NODE_EXTRA_CA_CERTS ?? "",
        ...secretsKey,
      }),
    gateway: () =>
      SERVICE_CONFIGS.gateway.toEnv({
        ...common,
        HANGAR_GATEWAY_PORT: o.gatewayPort,
        HANGAR_GATEWAY_TOKEN_KEY: o.tokenKey,
        HANGAR_DIR_IMAGE_ROOTS: dirImageRoots,
        ...secretsKey,
      }),
    proxy: () =>
      SERVICE_CONFIGS.proxy.toEnv({
        ...common,
        HANGAR_PROXY_PORT: o.proxyPort,
        HANGAR_PROXY_OPS_PORT: o.proxyOpsPort,
        // It opens the edge apps' secrets into their env, as a host agent opens a machine's.
        ...secretsKey,
      }),
    scheduler: () =>
      SERVICE_CONFIGS.scheduler.toEnv({ ...common, HANGAR_SCHEDULER_OPS_PORT: o.schedulerOpsPort }),
    monitor: () => SERVICE_CONFIGS.monitor.toEnv({ ...common, HANGAR_MONITOR_OPS_PORT: o.monitorPort }),
  };
  return { ...own[name](), ...(o.allEnv ?? {}), ...(o.env?.[name] ?? {}) };
}

function healthPort(name: ServiceName, o: ResolvedOptions): number {
  return {
    placement: o.placementOpsPort,
    "host-agent": o.hostOpsPort,
    volume: o.volumeOpsPort,
    "postgres-manager": o.postgresManagerOpsPort,
    webhooks: o.webhooksOpsPort,
    builder: o.builderOpsPort,
    gateway: o.gatewayPort,
    proxy: o.proxyOpsPort,
    scheduler: o.schedulerOpsPort,
    monitor: o.monitorPort,
  }[name];
}

/**
 * Node's arguments for a service's process: its TypeScript sources through tsx, or, when
 * HANGAR_RUN_FROM=dist, the JavaScript `pnpm run build` compiled into services/<name>/dist, bundled
 * into one file with its dependencies by scripts/bundle.ts (services/<name>/bundle/main.mjs). The
 * tests' global setup builds, bundles and sets it: a service then loads in about a third of the CPU
 * time, with no tsx hooks and no module resolution between it and its code (test platforms start ten).
 * The proxy runs edge apps in isolated-vm isolates, which need Node's --no-node-snapshot on Node 20+.
 *
 * HANGAR_PROFILE_SERVICES (names, comma-separated) runs those services under --cpu-prof: each writes
 * a .cpuprofile into HANGAR_PROFILE_DIR (default: the temp folder) when it exits, for Chrome's
 * DevTools or speedscope.
 */
export function serviceArgv(name: ServiceName): string[] {
  const flags = name === "proxy" ? ["--no-node-snapshot"] : [];
  const profiled = (process.env.HANGAR_PROFILE_SERVICES ?? "").split(",").map((n) => n.trim());
  if (profiled.includes(name))
    flags.push(
      "--cpu-prof",
      `--cpu-prof-dir=${process.env.HANGAR_PROFILE_DIR || tmpdir()}`,
      `--cpu-prof-name=${name}.${Date.now()}.cpuprofile`,
    );
  return process.env.HANGAR_RUN_FROM === "dist"
    ? [...flags, join(repoRoot, "services", name, "bundle", "main.mjs")]
    : [
        ...flags,
        "--conditions=source",
        "--import",
        "tsx",
        join(repoRoot, "services", name, "src", "main.ts"),
      ];
}

class ServiceProcess implements ServiceHandle {
  private child: ChildProcess | undefined;
  private ended: Promise<string> = Promise.resolve("not started");
  private log: WriteStream | undefined;
  private tail = "";

  constructor(
    readonly name: ServiceName,
    readonly healthUrl: string,
    private readonly env: Record<string, string>,
    private readonly logFile: string,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async launch(): Promise<void> {
    this.log ??= createWriteStream(this.logFile, { flags: "a" });
    const child = spawn(process.execPath, serviceArgv(this.name), {
      cwd: repoRoot,
      env: { ...process.env, ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    this.tail = "";
    const keep = (d: Buffer) => {
      this.log?.write(d);
      this.tail = (this.tail + d.toString()).slice(-4000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    this.ended = new Promise((resolve) =>
      child.once("exit", (code, signal) =>
        resolve(signal === null ? `exit code ${code}` : `killed by ${signal}`),
      ),
    );
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `${this.name} exited while starting (code ${child.exitCode}); its last output:\n${this.tail}`,
        );
      }
      const ok = await fetch(this.healthUrl, { signal: AbortSignal.timeout(1_000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      await sleep(100);
    }
    // What it says of itself (the step of its start under way), before it is stopped.
    const said = await fetch(this.healthUrl, { signal: AbortSignal.timeout(2_000) }).then(
      async (r) => `its /health answered ${r.status}: ${(await r.text()).slice(0, 1_000)}`,
      (err: unknown) => `its /health did not answer (${err instanceof Error ? err.message : String(err)})`,
    );
    // Not healthy in time: it must not live on, orphaned, beside the next attempt's platform.
    child.kill("SIGKILL");
    throw new Error(
      `${this.name} did not become healthy at ${this.healthUrl} within 60 s; ${said}; its last output:\n${this.tail}`,
    );
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await this.ended;
  }

  exited(): Promise<string> {
    return this.ended;
  }

  async restart(): Promise<void> {
    await this.kill("SIGKILL");
    await this.launch();
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await this.ended;
      clearTimeout(timer);
    }
    this.log?.end();
  }
}

/** The host id of a platform's one host agent unless told otherwise. */
export const DEFAULT_HOST_ID = "local-1";

/**
 * The NATS users of a platform whose host agents have `hostIds` (one host by default), their seeds
 * under `<home>/nats/creds` (kept across restarts) and the server's authorization block (start
 * nats-server with it).
 */
export function platformNatsCredentials(
  home: string,
  hostIds: readonly string[] = [DEFAULT_HOST_ID],
): Promise<NatsCredentials> {
  return writeNatsCredentials(join(home, "nats", "creds"), natsUsers([...hostIds]));
}

/** One more host agent of a running platform (startHostAgent): its process, id and state folder. */
export interface HostAgentHandle extends ServiceHandle {
  hostId: string;
  hostStateDir: string;
  /** SIGTERM, then SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/**
 * Starts a host agent for `options.hostId` (its own state folder `<home>/hosts/<id>`, NATS user,
 * ops port `hostOpsPort` and `env["host-agent"]`) beside a running platform's, and waits until it is
 * healthy: a platform with several hosts. Its NATS user must be in the platform's credentials.
 */
export async function startHostAgent(options: PlatformOptions): Promise<HostAgentHandle> {
  const hostId = options.hostId ?? DEFAULT_HOST_ID;
  const hostStateDir = join(options.home, "hosts", hostId);
  const logDir = options.logDir ?? join(options.home, "logs");
  await mkdir(logDir, { recursive: true });
  await mkdir(hostStateDir, { recursive: true });
  const o: ResolvedOptions = { ...options, ...NO_OTHER_OPS_PORTS };
  const agent = new ServiceProcess(
    "host-agent",
    `http://127.0.0.1:${o.hostOpsPort}/health`,
    serviceEnv("host-agent", o, hostId, hostStateDir),
    join(logDir, `host-agent-${hostId}.log`),
  );
  await agent.launch().catch(async (err: unknown) => {
    await agent.stop();
    throw err;
  });
  return Object.assign(agent, { hostId, hostStateDir });
}

/** One more replica of a service of a running platform (startReplica). */
export interface ReplicaHandle extends ServiceHandle {
  /** The port its /health is on (the gateway's: its API port). */
  opsPort: number;
  /** SIGTERM, then SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/**
 * Starts another replica of `name` beside a running platform's, against the same NATS, its /health
 * (and the gateway's API) on `opsPort`, its own log file `<name>-<opsPort>.log`, `env[name]` added;
 * waits until it is healthy. Replicas share the streams, the KV buckets, the command queue groups and
 * the leases (docs/architecture.md, "Replicas").
 */
export async function startReplica(
  name: ServiceName,
  options: PlatformOptions,
  opsPort: number,
): Promise<ReplicaHandle> {
  const hostId = options.hostId ?? DEFAULT_HOST_ID;
  const logDir = options.logDir ?? join(options.home, "logs");
  await mkdir(logDir, { recursive: true });
  // Only the service's own port key is read: every key names opsPort.
  const o: ResolvedOptions = {
    ...options,
    gatewayPort: opsPort,
    monitorPort: opsPort,
    placementOpsPort: opsPort,
    hostOpsPort: opsPort,
    proxyOpsPort: opsPort,
    builderOpsPort: opsPort,
    schedulerOpsPort: opsPort,
    volumeOpsPort: opsPort,
    postgresManagerOpsPort: opsPort,
    webhooksOpsPort: opsPort,
  };
  const replica = new ServiceProcess(
    name,
    `http://127.0.0.1:${opsPort}/health`,
    serviceEnv(name, o, hostId, join(o.home, "hosts", hostId)),
    join(logDir, `${name}-${opsPort}.log`),
  );
  await replica.launch().catch(async (err: unknown) => {
    await replica.stop();
    throw err;
  });
  return Object.assign(replica, { opsPort });
}

/** One more gateway of a running platform (startGateway): its process and API address. */
export interface GatewayHandle extends ServiceHandle {
  apiUrl: string;
  /** SIGTERM, then SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/**
 * Starts another gateway replica on `options.gatewayPort` beside a running platform's, against the
 * same NATS (its own log file `gateway-<port>.log`, `env.gateway` added), and waits until it is
 * healthy: replicas share the streams, the KV buckets (rate limits) and the command queue groups.
 */
export async function startGateway(options: PlatformOptions): Promise<GatewayHandle> {
  const gateway = await startReplica("gateway", options, options.gatewayPort);
  return Object.assign(gateway, { apiUrl: `http://127.0.0.1:${options.gatewayPort}` });
}

/** A connection to a platform's NATS (`url`: one or more, comma-separated) as the operator (every subject): for set-up, tests and tools. */
export function connectOperator(
  url: string,
  creds: NatsCredentials,
  name = "hangar-operator",
): Promise<NatsConnection> {
  return connect({
    servers: url.split(","),
    name,
    ...natsAuthOptions({ credsFile: creds.credsFile(OPERATOR_USER), user: OPERATOR_USER }),
  });
}

/** Starts every service at once and waits until all are healthy. */
export async function startPlatform(options: PlatformOptions): Promise<Platform> {
  const o: ResolvedOptions = {
    ...options,
    builderOpsPort: options.builderOpsPort ?? (await freePort()),
    schedulerOpsPort: options.schedulerOpsPort ?? (await freePort()),
    volumeOpsPort: options.volumeOpsPort ?? (await freePort()),
    postgresManagerOpsPort: options.postgresManagerOpsPort ?? (await freePort()),
    webhooksOpsPort: options.webhooksOpsPort ?? (await freePort()),
  };
  const hostId = o.hostId ?? DEFAULT_HOST_ID;
  const hostStateDir = join(o.home, "hosts", hostId);
  const logDir = o.logDir ?? join(o.home, "logs");
  await mkdir(logDir, { recursive: true });
  await mkdir(hostStateDir, { recursive: true });
  const services = {} as Record<ServiceName, ServiceProcess>;
  for (const name of SERVICES) {
    services[name] = new ServiceProcess(
      name,
      `http://127.0.0.1:${healthPort(name, o)}/health`,
      serviceEnv(name, o, hostId, hostStateDir),
      join(logDir, `${name}.log`),
    );
  }
  const stop = async () => {
    for (const name of [...SERVICES].reverse()) await services[name].stop();
  };
  // All at once: at start each service waits for NATS only, never for another service (what they
  // ask of each other comes later, once the platform is up), so a start takes about as long as its
  // slowest service's rather than the sum of all ten (8.7 -> 6.3 s on 2 cores). The platform is
  // returned once every one is healthy; if one fails, the others are stopped and its error thrown.
  const launches = await Promise.allSettled(SERVICES.map((name) => services[name].launch()));
  const failed = launches.find((l): l is PromiseRejectedResult => l.status === "rejected");
  if (failed) {
    await stop();
    throw failed.reason;
  }
  return {
    apiUrl: `http://127.0.0.1:${o.gatewayPort}`,
    proxyUrl: `http://localhost:${o.proxyPort}`,
    monitorUrl: `http://127.0.0.1:${o.monitorPort}`,
    hostId,
    hostStateDir,
    services,
    stop,
  };
}
