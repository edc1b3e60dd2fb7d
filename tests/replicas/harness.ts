// The replicated platform on loopback: a 3-node NATS cluster (streams and KV buckets with 3 replicas),
// 2 gateways, 2 placements, 2 schedulers, 2 monitors, one of each other service, one host agent and the
// proxy, every one a real process. Handles kill and restart each replica and each NATS node, and
// checkInvariants reads the event log back after a fault (tests/replicas/invariants.ts).
import { hostsStream, machinesStream, scalingStream } from "@hangar/domain";
import { type AggregateStream, EventStore, replay } from "@hangar/eventstore";
import { poll } from "@hangar/testkit";
import { SERVICES, type ServiceHandle, type ServiceName } from "../../scripts/platform.js";
import {
  ApiClient,
  startTestPlatform,
  type TestPlatform,
  type TestPlatformOptions,
} from "../platform/harness.js";
import {
  checkInvariants,
  type EventLog,
  type InvariantOptions,
  type InvariantReport,
  type LoggedEvent,
} from "./invariants.js";

export interface ReplicatedPlatformOptions {
  /** Replicas of each (default 2 each); every other service runs once. */
  gateways?: number;
  placements?: number;
  schedulers?: number;
  monitors?: number;
  /** NATS nodes (default 3): streams and buckets get this many replicas, up to 3. */
  natsNodes?: number;
  /** Extra environment per service, for every replica of it (as TestPlatformOptions.env). */
  env?: TestPlatformOptions["env"];
}

export interface ReplicatedPlatform extends TestPlatform {
  /** Every replica of each service; index 0 is the platform's own. */
  replicas: Record<ServiceName, ServiceHandle[]>;
  /** One API URL per gateway replica (the same index as replicas.gateway). */
  apiUrls: string[];
  /** One client per gateway replica, with the operator token. */
  apis: ApiClient[];
  /** The index in replicas.scheduler whose /health says it is the active one, if any. */
  activeScheduler(): Promise<number | undefined>;
  /** SIGKILLs every replica of every service at once, then starts them all again (healthy). */
  restartAll(): Promise<void>;
  /** Reads MACHINES, HOSTS and SCALING from the start and checks them (tests/replicas/invariants.ts). */
  checkInvariants(opts?: InvariantOptions): Promise<InvariantReport>;
  /** The event log as checkInvariants reads it. */
  readLog(): Promise<EventLog>;
}

/** Starts the replicated platform; close() stops it all. */
export async function startReplicatedPlatform(
  opts: ReplicatedPlatformOptions = {},
): Promise<ReplicatedPlatform> {
  const natsNodes = opts.natsNodes ?? 3;
  const counts: Partial<Record<ServiceName, number>> = {
    gateway: opts.gateways ?? 2,
    placement: opts.placements ?? 2,
    scheduler: opts.schedulers ?? 2,
    monitor: opts.monitors ?? 2,
  };
  const p = await startTestPlatform({
    natsNodes,
    // The node-loss test's writers create machines (not launched) that each hold 1 CPU and 256 MB
    // of the host for as long as the test runs: room for 1,024 of them, so that "insufficient
    // capacity" never stands in for an accepted write (a run filled the default 64 at 61 machines).
    hostCpus: 1024,
    hostMemoryMb: 1024 * 256,
    allEnv: { HANGAR_STREAM_REPLICAS: String(Math.min(3, natsNodes)) },
    ...(opts.env ? { env: opts.env } : {}),
  });
  const replicas = Object.fromEntries(SERVICES.map((name) => [name, [p.services[name]]])) as Record<
    ServiceName,
    ServiceHandle[]
  >;
  const apiUrls = [p.apiUrl];
  try {
    for (const [name, count] of Object.entries(counts) as [ServiceName, number][]) {
      for (let i = 1; i < count; i++) {
        let replica: ServiceHandle;
        if (name === "gateway") {
          const gateway = await p.startGateway();
          apiUrls.push(gateway.apiUrl);
          replica = gateway;
        } else {
          replica = await p.startReplica(name);
        }
        replicas[name].push(replica);
      }
    }
  } catch (err) {
    await p.close();
    throw err;
  }
  const apis = apiUrls.map((url) => new ApiClient(url, p.token));

  const readLog = async (): Promise<EventLog> => {
    const nc = await p.connectNats();
    try {
      const store = await EventStore.connect(nc);
      return {
        machines: await readStream(store, machinesStream),
        hosts: await readStream(store, hostsStream),
        scaling: await readStream(store, scalingStream),
      };
    } finally {
      await nc.close();
    }
  };

  return {
    ...p,
    replicas,
    apiUrls,
    apis,
    api: apis[0] ?? p.api,
    async activeScheduler() {
      const roles = await Promise.all(
        replicas.scheduler.map((s) =>
          fetch(s.healthUrl, { signal: AbortSignal.timeout(2_000) })
            .then((r) => r.json() as Promise<{ role?: string }>)
            .then((h) => h.role)
            .catch(() => undefined),
        ),
      );
      const i = roles.indexOf("active");
      return i < 0 ? undefined : i;
    },
    async restartAll() {
      const all = Object.values(replicas).flat();
      await Promise.all(all.map((s) => s.kill("SIGKILL")));
      // In the platform's order (placement and the host agent before the gateways), replicas side by side.
      for (const name of SERVICES) await Promise.all(replicas[name].map((s) => s.restart()));
    },
    readLog,
    async checkInvariants(options) {
      return checkInvariants(await readLog(), options);
    },
  };
}

/**
 * Every event of a stream, in order, with its aggregate, message sequence and command id, up to the
 * stream's last sequence as its leader tells it. A replay alone may stop early: it counts itself
 * caught up when its consumer has nothing pending, and a consumer placed on a replica still catching
 * up (a NATS node just restarted) has nothing pending before it has the newest messages.
 */
export async function readStream<E extends { type: string }>(
  store: EventStore,
  stream: AggregateStream<E>,
): Promise<LoggedEvent<E>[]> {
  const out: LoggedEvent<E>[] = [];
  const target = (await store.jsm.streams.info(stream.name)).state.last_seq;
  const r = await replay(store, stream, {
    follow: true,
    onEvents: (events, aggregateId) => {
      for (const e of events)
        out.push({ aggregateId, seq: e.seq, causationId: e.causationId, event: e.event });
    },
  });
  try {
    await r.caughtUp;
    await poll(async () => (r.lastSeq >= target ? true : undefined), {
      what: `${stream.name} read up to its last sequence ${target}`,
      timeoutMs: 60_000,
      intervalMs: 50,
    });
  } finally {
    await r.stop();
  }
  return out;
}
