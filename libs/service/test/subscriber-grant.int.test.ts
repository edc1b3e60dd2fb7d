// The in-cluster subscribers' user on a real nats-server with the generated users: it reads EVENTS
// through durable consumers of its own (and an ordered consumer), and is refused appending, changing
// or deleting the stream, making a stream, reading the aggregate streams, and touching a platform
// service's durable consumer of EVENTS.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { AckPolicy, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { natsAuthOptions } from "../src/nats.js";
import { type NatsCredentials, writeNatsCredentials } from "../src/nats-credentials.js";
import { type NatsUserSpec, natsUsers, OPERATOR_USER, SUBSCRIBER_USER } from "../src/nats-permissions.js";

/** A platform service with a durable consumer of EVENTS, as the webhooks service has. */
const projector: NatsUserSpec = {
  user: "projector",
  role: "a service projecting EVENTS",
  streams: [{ stream: "EVENTS", read: true, append: [], durables: ["projector"] }],
  kv: [],
  objects: [],
  publish: [],
  subscribe: [],
  serves: [],
};

let dir: string;
let creds: NatsCredentials;
let server: NatsServer;
let operator: JetStreamManager;
let subscriber: JetStreamManager;
const conns: NatsConnection[] = [];

async function managerOf(user: string): Promise<JetStreamManager> {
  const nc = await connect({
    servers: server.url,
    ...natsAuthOptions({ credsFile: creds.credsFile(user), user }),
  });
  conns.push(nc);
  return jetstreamManager(nc, { timeout: 2_000 });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hangar-subscriber-grant-"));
  creds = await writeNatsCredentials(dir, [...natsUsers(["h1"]), projector]);
  server = await startNatsServer({ authorization: creds.authorization });
  operator = await managerOf(OPERATOR_USER);
  await operator.streams.add({ name: "MACHINES", subjects: ["ev.machine.>"] });
  await operator.streams.add({ name: "EVENTS", subjects: [], sources: [{ name: "MACHINES" }] });
  await operator.consumers.add("EVENTS", { durable_name: "projector", ack_policy: AckPolicy.Explicit });
  await operator.jetstream().publish("ev.machine.app1.m1", "started");
  // Sourcing is asynchronous: wait until EVENTS holds the event.
  while ((await operator.streams.info("EVENTS")).state.messages < 1) await conns[0]?.flush();
  subscriber = await managerOf(SUBSCRIBER_USER);
});
afterAll(async () => {
  for (const nc of conns) await nc.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it("lets the subscriber read EVENTS through a durable consumer of its own, and an ordered one", async () => {
  await subscriber.consumers.add("EVENTS", {
    durable_name: "sub_audit",
    ack_policy: AckPolicy.Explicit,
    filter_subject: "ev.machine.>",
  });
  const js = subscriber.jetstream();
  const durable = await js.consumers.get("EVENTS", "sub_audit");
  const msg = await durable.next({ expires: 2_000 });
  expect(msg?.subject).toBe("ev.machine.app1.m1");
  expect(msg?.string()).toBe("started");
  await msg?.ackAck();
  expect((await durable.info()).ack_floor.stream_seq).toBe(1);

  const ordered = await js.consumers.get("EVENTS");
  const first = await ordered.next({ expires: 2_000 });
  expect(first?.seq).toBe(1);

  await subscriber.consumers.delete("EVENTS", "sub_audit");
});

it("refuses the subscriber appending, changing or deleting EVENTS, and making a stream", async () => {
  await expect(
    subscriber.jetstream().publish("ev.machine.app1.m1", "forged", { timeout: 1_000 }),
  ).rejects.toThrow();
  await expect(subscriber.streams.update("EVENTS", { max_msgs: 1 })).rejects.toThrow();
  await expect(subscriber.streams.purge("EVENTS")).rejects.toThrow();
  await expect(subscriber.streams.delete("EVENTS")).rejects.toThrow();
  await expect(subscriber.streams.add({ name: "MINE", subjects: ["mine.>"] })).rejects.toThrow();
  expect((await operator.streams.info("EVENTS")).state.messages).toBe(1);
});

it("refuses the subscriber reading the aggregate streams EVENTS sources", async () => {
  await expect(
    subscriber.consumers.add("MACHINES", { durable_name: "sub_machines", ack_policy: AckPolicy.Explicit }),
  ).rejects.toThrow();
  await expect(subscriber.streams.info("MACHINES")).rejects.toThrow();
});

it("refuses the subscriber a platform service's durable consumer of EVENTS", async () => {
  await expect(
    subscriber.consumers.add("EVENTS", { durable_name: "projector", ack_policy: AckPolicy.None }),
  ).rejects.toThrow();
  await expect(subscriber.consumers.delete("EVENTS", "projector")).rejects.toThrow();
  const theirs = await subscriber.jetstream().consumers.get("EVENTS", "projector");
  await expect(theirs.next({ expires: 1_000 })).rejects.toThrow();
  // The service's consumer still has its event: the subscriber took nothing from it.
  expect((await operator.consumers.info("EVENTS", "projector")).num_pending).toBe(1);
});
