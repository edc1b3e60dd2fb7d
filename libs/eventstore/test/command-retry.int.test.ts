import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CommandHandler,
  EventStore,
  ensureStream,
  isDomainError,
  isRetryable,
  PublishTimeoutError,
} from "../src/mod.js";
import { counterDecider, counterStreamFor } from "./counter.js";

// This file freezes its own nats-server (SIGSTOP), so it does not use the shared one.
let server: NatsServer;
let nc: NatsConnection;
let store: EventStore;
const stream = counterStreamFor("retry");

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  // Acknowledgements are given up after 300 ms, so a frozen server makes an append's fate unknown.
  store = await EventStore.connect(nc, { publishTimeoutMs: 300 });
  await ensureStream(store.jsm, stream);
});
afterAll(async () => {
  store?.close();
  await nc?.close();
  await server?.stop();
});

/** Whether every thread of `pid` is stopped ("T" in its /proc stat). */
function allThreadsStopped(pid: number): boolean {
  return readdirSync(`/proc/${pid}/task`).every((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T");
  });
}

/**
 * Freezes nats-server until `thaw` is called: what it received meanwhile it handles afterwards.
 * kill() returns before the stop is delivered, and a thread still running could answer the next
 * publish, so this waits until every thread of the server is stopped.
 */
async function freeze(): Promise<{ thaw(): void }> {
  process.kill(server.pid, "SIGSTOP");
  while (!allThreadsStopped(server.pid)) await sleep(1);
  return { thaw: () => process.kill(server.pid, "SIGCONT") };
}

describe("command handler and passing failures", () => {
  it("tries an append again after its acknowledgement was lost, and records the command once", async () => {
    const handler = new CommandHandler(store, stream, counterDecider);
    await handler.handle("c1", { type: "Increment", by: 1 }, { commandId: "first" });
    const frozen = await freeze();
    const handling = handler.handle("c1", { type: "Increment", by: 2 }, { commandId: "second" });
    // Past the publish timeout: the append failed with a retryable PublishTimeoutError, and the
    // handler is waiting to load again; the frozen server still holds the first publish.
    await sleep(500);
    frozen.thaw();
    const res = await handling;
    expect(res.state.total).toBe(3);
    const { events } = await store.readAggregate(stream, "c1");
    expect(events.map((e) => e.event)).toEqual([
      { type: "Incremented", data: { by: 1, totalAfter: 1 } },
      { type: "Incremented", data: { by: 2, totalAfter: 3 } },
    ]);
  });

  it("gives up after its transient retries, with the retryable error", async () => {
    const handler = new CommandHandler(store, stream, counterDecider, { maxTransientRetries: 0 });
    await handler.handle("c2", { type: "Increment", by: 1 }, { commandId: "c2-first" });
    const frozen = await freeze();
    try {
      const err = await handler.handle("c2", { type: "Increment", by: 1 }, { commandId: "c2-second" }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PublishTimeoutError);
      expect(isRetryable(err)).toBe(true);
    } finally {
      frozen.thaw();
    }
  });

  it("does not retry a refusal", async () => {
    const handler = new CommandHandler(store, stream, counterDecider);
    const err = await handler.handle("c3", { type: "Increment", by: -1 }, { commandId: "neg" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isDomainError(err, "invalid_argument")).toBe(true);
    expect(isRetryable(err)).toBe(false);
  });
});
