// A view reads past a message that is no event (decodeStored): here nats-server's own answer to a
// JetStream API request that named the aggregate's subject as its reply. A reader that waits for
// the subject's last sequence (AppSecrets.envFor, before a machine starts) is not left waiting.
import { randomBytes } from "node:crypto";
import { appDecider, appsStream } from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream, prefixedStream } from "@hangar/eventstore";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { AggregateView } from "../src/aggregate-view.js";

const stream = prefixedStream(appsStream, `aforeign${randomBytes(4).toString("hex")}`);
let nc: NatsConnection;
let store: EventStore;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, stream);
});
afterAll(async () => {
  await nc?.drain();
});

it("goes past a planted message, and a wait for its sequence ends there", async () => {
  const view = await AggregateView.start(store, stream, appDecider);
  try {
    await new CommandHandler(store, stream, appDecider).handle(
      "web",
      { type: "CreateApp", name: "web", orgSlug: "acme" },
      { commandId: "create-web" },
    );
    const before = (await store.jsm.streams.info(stream.name)).state.last_seq;
    await view.waitForSeq(before);
    // Waiting already for the next message (nothing else writes this stream), as a reader that has
    // just read the subject's last sequence does; then the server plants its answer there.
    const waited = view.waitForSeq(before + 1, 2_000);
    nc.publish(`$JS.API.STREAM.INFO.${stream.name}`, "", { reply: `${stream.subjectPrefix}.web` });
    await waited;
    // The subject's last sequence is the planted answer's, and the view got there without an event.
    expect(await store.lastSequence(stream, "web")).toBe(before + 1);
    expect(view.seqOf("web")).toBe(before);
    expect(view.get("web")).toMatchObject({ name: "web" });
  } finally {
    await view.stop();
  }
});
