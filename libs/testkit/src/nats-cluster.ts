import { ServerStartError } from "./errors.js";
import { type NatsServer, startNatsServer } from "./nats-server.js";
import { poll } from "./poll.js";
import { freePort } from "./ports.js";

export interface NatsCluster {
  servers: NatsServer[];
  /** One client URL per node. */
  urls: string[];
  /** Stops every node. Idempotent. */
  stop(): Promise<void>;
}

export interface NatsClusterOptions {
  /** Default: 3, the smallest cluster that survives losing a node. */
  size?: number;
  /** Every node's `authorization { ... }` block (startNatsServer's): only its users get in. */
  authorization?: string;
}

const LEADER_TIMEOUT_MS = 30_000;

/** Starts a JetStream cluster on 127.0.0.1 and resolves once every node sees an elected meta leader. */
export async function startNatsCluster(opts: NatsClusterOptions = {}): Promise<NatsCluster> {
  const size = opts.size ?? 3;
  // Each node's config lists every route, so all ports are chosen before the first node starts
  // (freePort never hands out a port twice).
  const nodes: { name: string; client: number; route: number; monitor: number }[] = [];
  for (let i = 1; i <= size; i++) {
    nodes.push({
      name: `hangar-${i}`,
      client: await freePort(),
      route: await freePort(),
      monitor: await freePort(),
    });
  }
  const routes = nodes.map((node) => `"nats-route://127.0.0.1:${node.route}"`).join(", ");

  const started = await Promise.allSettled(
    nodes.map((node) =>
      startNatsServer({
        name: node.name,
        port: node.client,
        ...(opts.authorization === undefined ? {} : { authorization: opts.authorization }),
        extraConfig: [
          `http: "127.0.0.1:${node.monitor}"`,
          `cluster { name: hangar, listen: "127.0.0.1:${node.route}", routes: [${routes}] }`,
        ].join("\n"),
      }),
    ),
  );
  const servers = started.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop()));
  };
  const failed = started.find((result) => result.status === "rejected");
  if (failed !== undefined) {
    await stop();
    throw failed.reason;
  }

  try {
    // Every node must see the leader, and the leader must see every peer current: before that,
    // placing a replicated stream can time out.
    await poll(
      () =>
        metaReady(
          nodes.map((n) => n.monitor),
          nodes.length,
        ),
      {
        what: "the JetStream meta leader to see every peer current",
        timeoutMs: LEADER_TIMEOUT_MS,
        intervalMs: 100,
      },
    );
  } catch (error) {
    await stop();
    throw new ServerStartError("nats-server", `JetStream cluster did not elect a meta leader: ${error}`, {
      cause: error,
    });
  }
  return { servers, urls: servers.map((server) => server.url), stop };
}

interface MetaCluster {
  leader?: string;
  replicas?: { name: string; current: boolean }[];
}

async function metaReady(monitorPorts: number[], size: number): Promise<true | undefined> {
  const views = await Promise.all(monitorPorts.map(metaCluster));
  if (views.some((v) => !v?.leader)) return undefined;
  const leaderView = views.find((v) => v?.replicas !== undefined);
  const current = leaderView?.replicas?.filter((r) => r.current).length ?? 0;
  return current === size - 1 ? true : undefined;
}

async function metaCluster(monitorPort: number): Promise<MetaCluster | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${monitorPort}/jsz`, {
      signal: AbortSignal.timeout(2_000),
    });
    const jsz = (await response.json()) as { meta_cluster?: MetaCluster };
    return jsz.meta_cluster;
  } catch {
    // The monitor endpoint answers a little after the client port; keep polling.
    return undefined;
  }
}
