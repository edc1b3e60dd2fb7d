import { setTimeout as sleep } from "node:timers/promises";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CommandHandler, EventStore, ensureStream, loadAggregate } from "../src/mod.js";
import { counterDecider, counterStreamFor } from "./counter.js";

// This file kills its own nats-server, so it does not use the shared one.
let server: NatsServer;
let nc: NatsConnection;
const stream = counterStreamFor("crash");

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({
    servers: server.url,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 50,
    timeout: 2_000,
  });
  await ensureStream((await EventStore.connect(nc)).jsm, stream);
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

describe("kill -9 of nats-server while appending", () => {
  it("keeps every acknowledged event, and the writers resume after the restart", async () => {
    const store = await EventStore.connect(nc);
    const handler = new CommandHandler(store, stream, counterDecider, { maxAttempts: 50 });
    const WRITERS = 4;
    const PER_WRITER = 150;
    const acked = new Map<string, number>(); // command id -> seq
    let failures = 0;
    let killed = false;
    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; i < PER_WRITER; i++) {
        const commandId = `w${w}-${i}`;
        // A command whose fate is unknown (timeout, lost connection) is sent again with the same id.
        for (;;) {
          try {
            const r = await handler.handle(`agg${w}`, { type: "Increment", by: 1 }, { commandId });
            acked.set(commandId, r.seq);
            break;
          } catch {
            failures++;
            await sleep(50);
          }
        }
      }
    });
    const chaos = (async () => {
      while (acked.size < (WRITERS * PER_WRITER) / 3) await sleep(5);
      await server.kill("SIGKILL");
      killed = true;
      await sleep(500);
      await server.restart();
    })();
    await Promise.all([...writers, chaos]);
    expect(killed).toBe(true);
    expect(failures).toBeGreaterThan(0);
    expect(acked.size).toBe(WRITERS * PER_WRITER);

    for (let w = 0; w < WRITERS; w++) {
      const { events } = await store.readAggregate(stream, `agg${w}`);
      const byCommand = new Map(events.map((e) => [e.causationId, e.seq]));
      // No command stored twice, none lost: exactly one event per acknowledged command.
      expect(events).toHaveLength(PER_WRITER);
      for (let i = 0; i < PER_WRITER; i++) expect(byCommand.get(`w${w}-${i}`)).toBe(acked.get(`w${w}-${i}`));
      const loaded = await loadAggregate(store, stream, counterDecider, `agg${w}`);
      expect(loaded.state).toEqual({ total: PER_WRITER, increments: PER_WRITER });
      expect(events.map((e) => (e.event.data as { totalAfter: number }).totalAfter)).toEqual(
        Array.from({ length: PER_WRITER }, (_, i) => i + 1),
      );
    }
  });
});
