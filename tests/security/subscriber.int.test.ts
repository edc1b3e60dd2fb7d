// The in-cluster subscribers' user on a real nats-server with the generated users and the EVENTS
// stream the gateway makes: it reads EVENTS through durable consumers of its own (and an ordered
// consumer) and turns what it reads into public events, as docs/events.md shows; it is refused
// appending, changing or deleting the stream, making a stream, reading the aggregate streams, and
// touching a platform service's durable consumer of EVENTS.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { machineAggregateId, machinesStream } from "@hangar/domain";
import { EVENTS_STREAM, EventsRelay, ensureEventsStream, toPublicEvents } from "@hangar/event-feed";
import { EventStore, ensureStream } from "@hangar/eventstore";
import {
  type NatsCredentials,
  type NatsUserSpec,
  natsUsers,
  OPERATOR_USER,
  SUBSCRIBER_USER,
  writeNatsCredentials,
} from "@hangar/service";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { AckPolicy, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, nkeyAuthenticator } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";

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

/** Connects as docs/events.md tells a subscriber to: the user's seed, and its own inbox prefix. */
async function managerOf(user: string): Promise<JetStreamManager> {
  const seed = new TextEncoder().encode(readFileSync(creds.credsFile(user), "utf8").trim());
  const nc = await connect({
    servers: server.url,
    authenticator: nkeyAuthenticator(seed),
    inboxPrefix: `_INBOX_${user}`,
  });
  conns.push(nc);
  return jetstreamManager(nc, { timeout: 2_000 });
}

let relay: EventsRelay | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hangar-subscriber-grant-"));
  creds = await writeNatsCredentials(dir, [...natsUsers(["h1"]), projector]);
  server = await startNatsServer({ authorization: creds.authorization });
  operator = await managerOf(OPERATOR_USER);
  await ensureStream(operator, machinesStream);
  expect(await ensureEventsStream(operator)).toBe(EVENTS_STREAM);
  await operator.consumers.add("EVENTS", { durable_name: "projector", ack_policy: AckPolicy.Explicit });
  const store = await EventStore.connect(conns[0] as NatsConnection);
  await store.append(
    machinesStream,
    machineAggregateId("app1", "m1"),
    [{ type: "MachineStarted", data: { hostId: "h1", pid: 42 } }],
    { commandId: "c1", expectedSeq: "any" },
  );
  relay = await EventsRelay.start(conns[0] as NatsConnection, operator);
  // The relay copies asynchronously: wait until EVENTS holds the event.
  while ((await operator.streams.info("EVENTS")).state.messages < 1) await conns[0]?.flush();
  subscriber = await managerOf(SUBSCRIBER_USER);
});
afterAll(async () => {
  await relay?.stop();
  for (const nc of conns) await nc.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it("lets the subscriber read EVENTS through a durable consumer of its own, and an ordered one", async () => {
  await subscriber.consumers.add("EVENTS", {
    durable_name: "sub_audit",
    ack_policy: AckPolicy.Explicit,
    filter_subject: "events.ev.machine.>",
  });
  const js = subscriber.jetstream();
  const durable = await js.consumers.get("EVENTS", "sub_audit");
  const msg = await durable.next({ expires: 2_000 });
  if (!msg) throw new Error("no message on sub_audit");
  expect(msg.subject).toBe("events.ev.machine.app1.m1");
  const events = toPublicEvents(msg, { orgOfApp: (app) => (app === "app1" ? "acme" : undefined) });
  expect(events).toMatchObject([
    {
      id: "1",
      type: "machine.started",
      app: "app1",
      org: "acme",
      subject: "app1.m1",
      data: { host_id: "h1" },
    },
  ]);
  await msg.ackAck();
  expect((await durable.info()).ack_floor.stream_seq).toBe(1);

  const ordered = await js.consumers.get("EVENTS");
  const first = await ordered.next({ expires: 2_000 });
  expect(first?.seq).toBe(1);

  await subscriber.consumers.delete("EVENTS", "sub_audit");
});

it("refuses the subscriber appending, changing or deleting EVENTS, and making a stream", async () => {
  for (const subject of ["ev.machine.app1.m1", "events.ev.machine.app1.m1"]) {
    await expect(subscriber.jetstream().publish(subject, "forged", { timeout: 1_000 })).rejects.toThrow();
  }
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
