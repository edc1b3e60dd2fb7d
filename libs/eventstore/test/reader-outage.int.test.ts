// A following reader across a kill -9 and restart of nats-server (same port, same store dir): its
// ephemeral consumer dies with the server, and it must resume on the reconnect, after the last
// message it delivered, without waiting for its heartbeat watchdog.
import { setTimeout as sleep } from "node:timers/promises";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventStore, EventStoreError, ensureStream, OrderedReader } from "../src/mod.js";
import { counterStreamFor } from "./counter.js";

// This file kills its own nats-server, so it does not use the shared one.
let server: NatsServer;
let nc: NatsConnection;
let store: EventStore;
const stream = counterStreamFor("outage");

beforeAll(async () => {
  server = await startNatsServer();
  // As a service connects: reconnecting forever.
  nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, stream);
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

/** Appends as a writer does across an outage: a retryable failure is sent again (same id, so once). */
async function increment(n: number): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await store.append(stream, "c1", [{ type: "Incremented", data: { by: 1, totalAfter: n } }], {
        expectedSeq: "any",
        commandId: `outage-${n}`,
      });
      return;
    } catch (err) {
      if (!(err instanceof EventStoreError && err.retryable) || attempt >= 5) throw err;
    }
  }
}

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

describe("OrderedReader across a nats-server restart", () => {
  it("resumes on the reconnect after the last sequence it delivered: every message once, in order", async () => {
    const seqs: number[] = [];
    const errors: unknown[] = [];
    // A watchdog far longer than the test: only the reconnect can bring the reader back.
    const reader = await OrderedReader.start(nc, store.jsm, {
      stream: stream.name,
      filter: `${stream.subjectPrefix}.>`,
      heartbeatMs: 120_000,
      onMessage: (m) => seqs.push(m.seq),
      onError: (err) => errors.push(err),
    });
    try {
      for (let n = 1; n <= 3; n++) await increment(n);
      await until("the first three messages", () => seqs.length === 3);

      await server.kill("SIGKILL");
      const down = performance.now();
      await server.restart();
      for (let n = 4; n <= 6; n++) await increment(n);
      await until("the messages appended after the restart", () => seqs.length >= 6);
      console.log(
        `reader resumed ${Math.round(performance.now() - down)} ms after the kill (errors meanwhile: ${errors.length})`,
      );

      expect(seqs).toEqual([1, 2, 3, 4, 5, 6]);
      expect(reader.position).toBe(6);
    } finally {
      await reader.stop();
    }
  });
});
