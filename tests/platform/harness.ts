// A whole platform for one test file: its own nats-server (the services use the platform's fixed
// stream names) and every service as a real process on free ports, plus a small Machines API client.
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mintToken } from "@hangar/auth";
import type { NatsCredentials } from "@hangar/service";
import {
  createNetworkTopology,
  freePort,
  type NatsCluster,
  type NatsServer,
  type NetworkTopology,
  startNatsCluster,
  startNatsServer,
  testDatabase,
} from "@hangar/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import { inject } from "vitest";
import {
  connectOperator,
  DEFAULT_HOST_ID,
  type GatewayHandle,
  type HostAgentHandle,
  type Platform,
  type PlatformOptions,
  platformNatsCredentials,
  type ReplicaHandle,
  repoRoot,
  type ServiceName,
  startGateway,
  startHostAgent,
  startPlatform,
  startReplica,
} from "../../scripts/platform.js";
import { removeNetns } from "../../services/host-agent/src/driver/netns.js";
import { listMachineIds } from "../../services/host-agent/src/driver/state.js";
import { removeStateDir } from "../../services/host-agent/test/harness.js";

export const helloDir = join(repoRoot, "examples", "hello");

export interface TestPlatform extends Platform {
  /** Secured: only the platform's users get in (natsCreds). With `natsNodes` > 1: the cluster's first node. */
  nats: NatsServer;
  /** Every node's client URL, comma-separated: the services' HANGAR_NATS_URL. */
  natsUrl: string;
  /** With `natsNodes` > 1: the JetStream cluster (each node's kill() and restart()). */
  natsCluster?: NatsCluster;
  natsCreds: NatsCredentials;
  /** A connection to the platform's NATS as the operator (every subject); the caller closes it. */
  connectNats(): Promise<NatsConnection>;
  home: string;
  /** An operator token (every org), minted offline with `tokenKey` as npm start mints its own. */
  token: string;
  /** HANGAR_GATEWAY_TOKEN_KEY, for tests that mint or attenuate tokens themselves. */
  tokenKey: Uint8Array;
  api: ApiClient;
  proxyPort: number;
  /** The hosts' network namespaces: the platform's host agent runs on hosts[0]. */
  topology: NetworkTopology;
  /** The host id of each topology host's agent, by index (hostIds[0] is the platform's `hostId`). */
  hostIds: string[];
  /**
   * Starts a host agent on topology host `index` (1..: 0 is the platform's own), as host
   * hostIds[index] with its own state folder; `env` adds to its environment (e.g. HANGAR_REGION).
   * close() stops it.
   */
  startHostAgent(index: number, env?: Record<string, string>): Promise<HostAgentHandle>;
  /** Starts another gateway replica on a free port, with the platform's gateway settings; close() stops it. */
  startGateway(): Promise<GatewayHandle>;
  /**
   * Starts another replica of a service (not the host agent or the proxy: one per host) with the
   * platform's settings, its /health on a free port; close() stops it.
   */
  startReplica(name: ServiceName): Promise<ReplicaHandle>;
  /**
   * Starts another proxy (as a second edge of the same host would be) on a free port of its own,
   * with the platform's proxy settings and `env`; close() stops it.
   */
  startProxy(env?: Record<string, string>): Promise<ReplicaHandle & { proxyPort: number }>;
  /** Stops the services, any machine they left, the nats-server, the topology, and removes the folder. */
  close(): Promise<void>;
}

export interface TestPlatformOptions extends Partial<PlatformOptions> {
  /** How many hosts its network topology has (default 1); see TestPlatform.startHostAgent. */
  hosts?: number;
  /** NATS nodes (default 1): more make a JetStream cluster (libs/testkit startNatsCluster). */
  natsNodes?: number;
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
}

/** A thin client of the Machines API: JSON in, status and JSON out. */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  async call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    opts: { token?: string | null; headers?: Record<string, string>; raw?: string } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    const token = opts.token === undefined ? this.token : opts.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined || opts.raw !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${this.baseUrl}/v1${path}`, {
      method,
      headers,
      body: opts.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON: the test sees the text.
    }
    return { status: res.status, body: parsed as T };
  }

  async ok<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.call<T>(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }
}

/** A machine config running examples/hello, served on internal port 8080. */
export function helloConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    image: `dir:${helloDir}`,
    guest: { cpu_kind: "shared", cpus: 1, memory_mb: 256 },
    services: [
      {
        protocol: "tcp",
        internal_port: 8080,
        ports: [
          { port: 80, handlers: ["http"] },
          { port: 443, handlers: ["tls", "http"] },
        ],
      },
    ],
    ...extra,
  };
}

/** How an app scales: its [http_service] concurrency and autoscaling keys. */
export interface Scale {
  soft?: number;
  hard?: number;
  autostop?: "off" | "stop" | "suspend";
  min?: number;
  max?: number;
}

/** helloConfig() whose service scales as `s` says (defaults: soft 20, autostop off, min 0, max 12). */
export function scaledHelloConfig(s: Scale): Record<string, unknown> {
  const base = helloConfig();
  const [svc] = base.services as Record<string, unknown>[];
  return {
    ...base,
    services: [
      {
        ...svc,
        concurrency: { type: "connections", soft_limit: s.soft ?? 20, hard_limit: s.hard },
        autostop: s.autostop ?? "off",
        autostart: true,
        min_machines_running: s.min ?? 0,
        max_machines_running: s.max ?? 12,
      },
    ],
  };
}

/**
 * A fresh database of the test run's Postgres (started by vitest's global setup) for the platform's
 * read models (POSTGRES_SERVICES), named after the platform's folder; undefined outside vitest (a
 * benchmark), where the postgres manager answers from its own fold.
 */
async function platformDatabase(home: string): Promise<string | undefined> {
  let url: string;
  try {
    url = inject("postgresUrl");
  } catch {
    return undefined;
  }
  const name = `platform_${home
    .slice(-6)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, "_")}`;
  return testDatabase(url, name);
}

/**
 * Starts a network topology (`opts.hosts` hosts, 1 by default), nats-server and the platform in a
 * temp HANGAR_HOME; the host agent runs on the topology's first host, so its machines' network
 * (routes, firewall, forwarding) lives in namespaces the test owns, never in the root namespace.
 * `dir:` images may run from examples/hello only (helloConfig's folder), unless `opts.dirImageRoots`
 * lists the test's folders.
 */
export async function startTestPlatform(opts: TestPlatformOptions = {}): Promise<TestPlatform> {
  const { hosts = 1, natsNodes = 1, ...platformOpts } = opts;
  const home = mkdtempSync(join(tmpdir(), "hangar-platform-"));
  chmodSync(home, 0o755);
  const topology = await createNetworkTopology({ hosts });
  const hostId = opts.hostId ?? DEFAULT_HOST_ID;
  const hostIds = topology.hosts.map((host, i) => (i === 0 ? hostId : `${hostId}-${host.name}`));
  const natsCreds = await platformNatsCredentials(home, hostIds);
  const natsCluster =
    natsNodes > 1
      ? await startNatsCluster({ size: natsNodes, authorization: natsCreds.authorization }).catch(
          async (err: unknown) => {
            await topology.close();
            throw err;
          },
        )
      : undefined;
  const nats =
    natsCluster?.servers[0] ??
    (await startNatsServer({
      storeDir: join(home, "nats"),
      authorization: natsCreds.authorization,
    }).catch(async (err: unknown) => {
      await topology.close();
      throw err;
    }));
  const natsUrl = natsCluster ? natsCluster.urls.join(",") : nats.url;
  const stopNats = () => (natsCluster ? natsCluster.stop() : nats.stop());
  const tokenKey = new Uint8Array(randomBytes(32));
  const token = mintToken(tokenKey, { id: "tok_test_operator", kind: "operator" });
  // A random secrets master key per platform, in a file as npm start keeps it.
  const secretsKeyFile = join(home, "secrets-key");
  writeFileSync(secretsKeyFile, randomBytes(32).toString("base64"), { mode: 0o600 });
  const proxyPort = await freePort();
  const databaseUrl = await platformDatabase(home);
  // Ordinary tests create and delete machines and apps far faster than an org's default budget
  // allows: the test platform raises every action's limit (a test's own env.gateway, or an org's
  // limits, may lower them again).
  const gatewayEnv = {
    HANGAR_GATEWAY_RATE_LIMITS:
      "machine_create=1000000,machine_start=1000000,machine_get=1000000,app_create=1000000,volume=1000000",
    ...(opts.env?.gateway ?? {}),
  };
  const hostEnv = (index: number, extra: Record<string, string> = {}) => ({
    HANGAR_HOST_AGENT_STOP_MACHINES: "1",
    ...(topology.hosts[index]?.env ?? {}),
    ...(opts.env?.["host-agent"] ?? {}),
    ...extra,
  });
  const base: PlatformOptions = {
    home,
    natsUrl,
    natsCreds,
    tokenKey: Buffer.from(tokenKey).toString("base64"),
    gatewayPort: await freePort(),
    proxyPort,
    monitorPort: await freePort(),
    placementOpsPort: await freePort(),
    hostOpsPort: await freePort(),
    proxyOpsPort: await freePort(),
    hostCpus: 64,
    hostMemoryMb: 64 * 256,
    // HANGAR_TEST_LOG_LEVEL=debug keeps the services' debug lines (with HANGAR_KEEP_TEST_HOME, in <home>/logs).
    logLevel: process.env.HANGAR_TEST_LOG_LEVEL || "warn",
    dirImageRoots: [helloDir],
    secretsKeyFile,
    ...platformOpts,
  };
  const platformEnv: PlatformOptions["env"] = {
    ...(opts.env ?? {}),
    gateway: gatewayEnv,
    "host-agent": hostEnv(0),
    "postgres-manager": {
      ...(databaseUrl === undefined ? {} : { HANGAR_DATABASE_URL: databaseUrl }),
      ...(opts.env?.["postgres-manager"] ?? {}),
    },
    // Tests' webhook receivers listen on loopback, which webhooks may not reach by default.
    webhooks: { HANGAR_WEBHOOKS_ALLOW_PRIVATE_TARGETS: "true", ...(opts.env?.webhooks ?? {}) },
  };
  let platform: Platform;
  try {
    platform = await startPlatform({ ...base, env: platformEnv });
  } catch (err) {
    await stopNats();
    await topology.close();
    throw err;
  }
  const extraAgents: HostAgentHandle[] = [];
  const extraGateways: GatewayHandle[] = [];
  const extraReplicas: ReplicaHandle[] = [];
  const api = new ApiClient(platform.apiUrl, token);
  // Apps go to the "personal" org unless they name another, as with npm start; the org must exist.
  await api.ok("POST", "/orgs", { slug: "personal" }).catch(async (err: unknown) => {
    await platform.stop();
    await stopNats();
    await topology.close();
    throw err;
  });
  return {
    ...platform,
    nats,
    natsUrl,
    ...(natsCluster ? { natsCluster } : {}),
    natsCreds,
    connectNats: () => connectOperator(natsUrl, natsCreds, "hangar-test"),
    home,
    token,
    tokenKey,
    proxyPort,
    api,
    topology,
    hostIds,
    async startHostAgent(index, env) {
      const id = hostIds[index];
      if (index < 1 || id === undefined) {
        throw new RangeError(
          `topology host ${index}: the platform's own is 0, others are 1..${hostIds.length - 1}`,
        );
      }
      const agent = await startHostAgent({
        ...base,
        hostId: id,
        hostOpsPort: await freePort(),
        env: { "host-agent": hostEnv(index, env) },
      });
      extraAgents.push(agent);
      return agent;
    },
    async startGateway() {
      const gateway = await startGateway({
        ...base,
        gatewayPort: await freePort(),
        env: { gateway: gatewayEnv },
      });
      extraGateways.push(gateway);
      return gateway;
    },
    async startReplica(name) {
      if (name === "host-agent" || name === "proxy") {
        throw new RangeError(`${name}: one per host (startHostAgent starts another host's agent)`);
      }
      const replica = await startReplica(
        name,
        { ...base, env: { [name]: platformEnv[name] ?? {} } },
        await freePort(),
      );
      extraReplicas.push(replica);
      return replica;
    },
    async startProxy(env = {}) {
      const port = await freePort();
      const replica = await startReplica(
        "proxy",
        { ...base, proxyPort: port, env: { proxy: { ...(platformEnv.proxy ?? {}), ...env } } },
        await freePort(),
      );
      extraReplicas.push(replica);
      return Object.assign(replica, { proxyPort: port });
    },
    async close() {
      for (const replica of extraReplicas) await replica.stop();
      for (const gateway of extraGateways) await gateway.stop();
      for (const agent of extraAgents) await agent.stop();
      await platform.stop();
      await stopNats();
      // Stopped machines keep their network namespaces and mounted root filesystems (as they would
      // across a platform restart); a test platform is gone for good, so they go too.
      const stateDirs = [platform.hostStateDir, ...extraAgents.map((agent) => agent.hostStateDir)];
      for (const dir of stateDirs) {
        for (const id of await listMachineIds(dir)) await removeNetns(id);
        // With their crun state and address claims.
        await removeStateDir(dir);
      }
      await topology.close();
      // HANGAR_KEEP_TEST_HOME=1 keeps the folder (service logs are in <home>/logs) to debug a failure.
      if (process.env.HANGAR_KEEP_TEST_HOME !== "1") rmSync(home, { recursive: true, force: true });
      else process.stderr.write(`kept ${home}\n`);
    },
  };
}

export interface ProxyResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends a request through the proxy as `<app>.localhost` (node:http: fetch may not set Host). */
export function viaProxy(
  p: TestPlatform,
  app: string,
  path = "/",
  method = "GET",
  headers: Record<string, string> = {},
): Promise<ProxyResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: p.proxyPort,
        path,
        method,
        headers: { ...headers, host: `${app}.localhost:${p.proxyPort}` },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}
