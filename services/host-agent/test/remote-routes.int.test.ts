// A host agent keeps its host's 6PN routes to other hosts' machines in step with MACHINES and HOSTS:
// events of another host's machines (written straight to the streams, as that host's agent would)
// reach the agent's host network as /128 routes via that host's underlay address. A restarted agent
// applies nothing before its views are caught up, so its first set is the whole one.
import { hostDecider, hostsStream, machineAggregateId, machineDecider, machinesStream } from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream } from "@hangar/eventstore";
import { createLogger } from "@hangar/telemetry";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostAgent } from "../src/agent.js";
import { ProcessDriver } from "../src/driver/mod.js";
import type { RemoteRoute } from "../src/network/remote-routes.js";
import { removeStateDir, tempStateDir } from "./harness.js";
import { waitFor } from "./wait.js";

const APP = "routed";
const LOCAL = "h-routes-local";
const REMOTE = "h-routes-remote";

let server: NatsServer;
let nc: NatsConnection;
let store: EventStore;
let stateDir: string;
let running: { agent: HostAgent; driver: ProcessDriver } | undefined;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  store = await EventStore.connect(nc);
  for (const s of [hostsStream, machinesStream]) await ensureStream(store.jsm, s);
  stateDir = await tempStateDir();
});

afterAll(async () => {
  await stopAgent();
  if (stateDir) await removeStateDir(stateDir);
  await nc?.drain();
  await server?.stop();
});

/** Starts the local host's agent with a host network that records every set of routes it is given. */
async function startAgent(): Promise<RemoteRoute[][]> {
  const applied: RemoteRoute[][] = [];
  const driver = new ProcessDriver({ stateDir, pollIntervalMs: 50 });
  const agent = new HostAgent({
    nc,
    store,
    driver,
    logger: createLogger("host-agent-test", { level: "silent" }),
    hostId: LOCAL,
    region: "local",
    cpus: 8,
    memoryMb: 4096,
    address: "127.0.0.1",
    underlayIp: "fd00:99::1",
    hostNetwork: {
      async setRemoteRoutes(routes) {
        applied.push(routes);
      },
    },
  });
  await agent.start();
  running = { agent, driver };
  return applied;
}

async function stopAgent(): Promise<void> {
  if (!running) return;
  await running.agent.stop();
  await running.driver.close();
  running = undefined;
}

function registerRemote(underlayIp: string) {
  return new CommandHandler(store, hostsStream, hostDecider).handle(
    REMOTE,
    {
      type: "RegisterHost",
      hostId: REMOTE,
      region: "local",
      cpus: 8,
      memoryMb: 4096,
      address: "127.0.0.1",
      underlayIp,
    },
    { commandId: `register-${underlayIp}` },
  );
}

/** A machine of the remote host, started there with `privateIpv6`. */
async function startedRemotely(id: string, privateIpv6: string): Promise<void> {
  const machines = new CommandHandler(store, machinesStream, machineDecider);
  const aggregateId = machineAggregateId(APP, id);
  await machines.handle(
    aggregateId,
    {
      type: "CreateMachine",
      machineId: id,
      app: APP,
      name: `${APP}-${id}`,
      region: "local",
      instanceId: `v1-${id}`,
      configJson: JSON.stringify({ image: "registry.local/app:1" }),
      skipLaunch: false,
      hostId: REMOTE,
    },
    { commandId: `create-${id}` },
  );
  await machines.handle(
    aggregateId,
    {
      type: "RecordStarted",
      hostId: REMOTE,
      pid: 4242,
      privateIp: "172.30.0.2",
      privateIpv6,
      port: 8080,
      startTime: 1,
      adopted: false,
    },
    { commandId: `started-${id}` },
  );
}

async function destroyedRemotely(id: string): Promise<void> {
  const machines = new CommandHandler(store, machinesStream, machineDecider);
  const aggregateId = machineAggregateId(APP, id);
  await machines.handle(
    aggregateId,
    { type: "DestroyMachine", force: true, nowMs: Date.now() },
    { commandId: `destroy-${id}` },
  );
  await machines.handle(aggregateId, { type: "RecordDestroyed" }, { commandId: `destroyed-${id}` });
}

const last = (applied: RemoteRoute[][]) => applied.at(-1);

describe("6PN routes to other hosts' machines", () => {
  it("follow machines and hosts: added when started, moved with the host's underlay, gone when destroyed", async () => {
    await registerRemote("fd00:99::2");
    await startedRemotely("m1", "fdaa:1:2:3::1");
    const applied = await startAgent();
    await waitFor("the first routes", () => applied[0]);
    expect(applied[0]).toEqual([{ address: "fdaa:1:2:3::1", via: "fd00:99::2" }]);

    await startedRemotely("m2", "fdaa:1:2:3::2");
    await waitFor("m2's route", () => (last(applied)?.length === 2 ? true : undefined));
    expect(last(applied)).toEqual([
      { address: "fdaa:1:2:3::1", via: "fd00:99::2" },
      { address: "fdaa:1:2:3::2", via: "fd00:99::2" },
    ]);

    await registerRemote("fd00:99::3");
    await waitFor("routes via the new underlay", () =>
      last(applied)?.every((r) => r.via === "fd00:99::3") ? true : undefined,
    );

    await destroyedRemotely("m1");
    await waitFor("m1's route gone", () => (last(applied)?.length === 1 ? true : undefined));
    expect(last(applied)).toEqual([{ address: "fdaa:1:2:3::2", via: "fd00:99::3" }]);
  });

  it("a restarted agent's first set is the whole one: no route dropped while it catches up", async () => {
    await stopAgent();
    const applied = await startAgent();
    await waitFor("the first routes", () => applied[0]);
    expect(applied[0]).toEqual([{ address: "fdaa:1:2:3::2", via: "fd00:99::3" }]);
  });
});
