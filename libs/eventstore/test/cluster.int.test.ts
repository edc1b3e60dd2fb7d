import { setTimeout as sleep } from "node:timers/promises";
import { type NatsCluster, startNatsCluster } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CommandHandler, EventStore, ensureStream, loadAggregate } from "../src/mod.js";
import { counterDecider, counterStreamFor } from "./counter.js";

// The production shape: a 3-node JetStream cluster with streams replicated three times.
let cluster: NatsCluster;
let nc: NatsConnection;
const stream = counterStreamFor("cluster");

beforeAll(async () => {
  cluster = await startNatsCluster({ size: 3 });
  nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 50 });
}, 120_000);
afterAll(async () => {
  await nc?.close();
  await cluster?.stop();
});

describe("event store on a 3-node cluster (R3)", () => {
  // When the killed node is the one this client was connected to, nats-server 2.9 leaves the first
  // appends after the kill unanswered for a while: measured on this 2-core machine, each attempt of
  // c50 timed out (5 s publish, then 15–20 s JetStream API) for 20 s to over 50 s before the cluster answered
  // again, with the client on the 1a0bf7d event store as well as on this one. Nothing acknowledged is
  // lost meanwhile, which is what this test checks; how fast a client fails over is not.
  it("keeps appending with one node killed, and loses nothing acknowledged", async () => {
    const store = await EventStore.connect(nc);
    await ensureStream(store.jsm, stream, { replicas: 3 });
    expect((await store.jsm.streams.info(stream.name)).config.num_replicas).toBe(3);
    const handler = new CommandHandler(store, stream, counterDecider, { maxAttempts: 50 });
    const acked = new Set<string>();
    const run = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const commandId = `c${i}`;
        for (;;) {
          try {
            await handler.handle("replicated", { type: "Increment", by: 1 }, { commandId });
            acked.add(commandId);
            break;
          } catch {
            await sleep(100);
          }
        }
      }
    };
    await run(0, 50);
    // Kill a node that is not the one we are connected to... or is: either way the rest carry on.
    const victim = cluster.servers[2];
    await victim?.kill("SIGKILL");
    await run(50, 100);
    await victim?.restart();
    await run(100, 120);
    const loaded = await loadAggregate(store, stream, counterDecider, "replicated");
    expect(acked.size).toBe(120);
    expect(loaded.state).toEqual({ total: 120, increments: 120 });
    store.close();
  }, 180_000);

  it("reads every acknowledged append back at once, from a client on a follower of the stream", async () => {
    // A client's direct gets go to the replica on its own server. Connected to a follower, that
    // replica applies an append only after the leader acknowledged it, so a read right after the
    // ack must not be served by it.
    const fresh = counterStreamFor("cluster-fresh");
    const setup = await EventStore.connect(nc);
    await ensureStream(setup.jsm, fresh, { replicas: 3 });
    const leader = (await setup.jsm.streams.info(fresh.name)).cluster?.leader;
    setup.close();
    expect(leader).toMatch(/^hangar-\d$/);
    const follower = cluster.servers.findIndex((_, i) => `hangar-${i + 1}` !== leader);
    const onFollower = await connect({ servers: cluster.urls[follower] });
    try {
      expect(onFollower.info?.server_name).not.toBe(leader);
      const store = await EventStore.connect(onFollower);
      const handler = new CommandHandler(store, fresh, counterDecider);
      const stale: number[] = [];
      for (let i = 1; i <= 300; i++) {
        const done = await handler.handle("one", { type: "Increment", by: 1 }, { commandId: `f${i}` });
        if ((await store.lastSequence(fresh, "one")) !== done.seq) stale.push(i);
        if ((await store.readMessage(fresh, done.seq))[0]?.event.type !== "Incremented") stale.push(i);
        const loaded = await loadAggregate(store, fresh, counterDecider, "one");
        if (loaded.state.total !== i) stale.push(i);
      }
      expect(stale).toEqual([]);
      store.close();
    } finally {
      await onFollower.close();
    }
  }, 120_000);
});
