import { machineAggregateId, machineDecider, machinesStream } from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream } from "@hangar/eventstore";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Monitor } from "../src/monitor.js";

let server: NatsServer;
let nc: NatsConnection;
let store: EventStore;

const create = (id: string) => ({
  type: "CreateMachine" as const,
  machineId: id,
  app: "web",
  name: id,
  region: "local",
  instanceId: "i1",
  configJson: "{}",
  skipLaunch: false,
  hostId: "h1",
});
const started = (pid: number) =>
  ({
    type: "RecordStarted",
    hostId: "h1",
    pid,
    privateIp: "127.0.0.1",
    port: 1,
    startTime: 1,
    adopted: false,
  }) as const;

async function run(id: string, commands: object[]) {
  const h = new CommandHandler(store, machinesStream, machineDecider);
  let i = 0;
  for (const c of commands)
    await h.handle(machineAggregateId("web", id), c as never, { commandId: `${id}-${i++}` });
}

async function metric(registry: Registry, name: string) {
  return (await registry.getSingleMetric(name)?.get())?.values ?? [];
}

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, machinesStream);
});
afterAll(async () => {
  await nc?.drain();
  await server?.stop();
});

describe("monitor", () => {
  it("counts machines by state from history, and transitions, latency and exits live", async () => {
    await run("old", [create("old"), started(10)]);
    const registry = new Registry();
    const monitor = await Monitor.start(store, registry);
    try {
      expect(await metric(registry, "hangar_machines")).toContainEqual(
        expect.objectContaining({ value: 1, labels: { app: "web", region: "local", state: "started" } }),
      );
      await run("new", [
        create("new"),
        started(11),
        { type: "RecordExited", exitCode: 3, signal: "", codeUnknown: false, restart: false },
      ]);
      await expect.poll(async () => (await metric(registry, "hangar_machine_exits_total")).length).toBe(1);
      expect(await metric(registry, "hangar_machine_exits_total")).toContainEqual(
        expect.objectContaining({ value: 1, labels: { app: "web", code: "3", requested: "false" } }),
      );
      const states = await metric(registry, "hangar_machines");
      expect(states).toContainEqual(
        expect.objectContaining({ value: 1, labels: { app: "web", region: "local", state: "stopped" } }),
      );
      expect(states).toContainEqual(
        expect.objectContaining({ value: 1, labels: { app: "web", region: "local", state: "started" } }),
      );
      const latency = await metric(registry, "hangar_machine_create_to_started_seconds");
      expect(latency.find((v) => (v as { metricName?: string }).metricName?.endsWith("_count"))?.value).toBe(
        1,
      );
      const transitions = await metric(registry, "hangar_machine_transitions_total");
      expect(transitions).toContainEqual(
        expect.objectContaining({ labels: { app: "web", from: "started", to: "stopped" } }),
      );
    } finally {
      await monitor.stop();
    }
  });
});
