import { machineAggregateId, machineDecider, machinesStream } from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream } from "@hangar/eventstore";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { AckPolicy } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConsumerLag } from "../src/consumer-lag.js";
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
      expect(latency).toContainEqual(
        expect.objectContaining({ labels: expect.objectContaining({ app: "web" }) }),
      );
      expect(await metric(registry, "hangar_machine_starts_total")).toEqual([
        expect.objectContaining({ value: 1, labels: { app: "web", region: "local", result: "started" } }),
      ]);
      const transitions = await metric(registry, "hangar_machine_transitions_total");
      expect(transitions).toContainEqual(
        expect.objectContaining({ labels: { app: "web", from: "started", to: "stopped" } }),
      );
    } finally {
      await monitor.stop();
    }
  });
});

describe("consumer lag", () => {
  it("serves num_pending and num_ack_pending of durable consumers only, by stream and consumer", async () => {
    await run("lagged", [create("lagged"), started(12)]);
    const total = (await store.jsm.streams.info(machinesStream.name)).state.messages;
    await store.jsm.consumers.add(machinesStream.name, {
      durable_name: "lag-probe",
      ack_policy: AckPolicy.Explicit,
    });
    // An ephemeral consumer (a view following the stream) has a random name: it must not show.
    const ephemeral = await store.jsm.consumers.add(machinesStream.name, { ack_policy: AckPolicy.None });
    const registry = new Registry();
    const lag = await ConsumerLag.start(store.jsm, registry, { intervalMs: 60_000 });
    try {
      expect(await metric(registry, "hangar_nats_consumer_pending_messages")).toEqual([
        expect.objectContaining({ value: total, labels: { stream: "MACHINES", consumer: "lag-probe" } }),
      ]);
      const c = await store.js.consumers.get(machinesStream.name, "lag-probe");
      const batch = await c.fetch({ max_messages: 2, expires: 2_000 });
      for await (const _m of batch) {
        // Delivered, not acknowledged.
      }
      await lag.poll();
      expect(await metric(registry, "hangar_nats_consumer_pending_messages")).toEqual([
        expect.objectContaining({ value: total - 2, labels: { stream: "MACHINES", consumer: "lag-probe" } }),
      ]);
      expect(await metric(registry, "hangar_nats_consumer_ack_pending_messages")).toEqual([
        expect.objectContaining({ value: 2, labels: { stream: "MACHINES", consumer: "lag-probe" } }),
      ]);
    } finally {
      await lag.stop();
      await store.jsm.consumers.delete(machinesStream.name, ephemeral.name);
    }
  });
});
