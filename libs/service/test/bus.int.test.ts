import { randomBytes } from "node:crypto";
import { DomainError, isRetryable, PublishTimeoutError } from "@hangar/eventstore";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, RequestError, TimeoutError } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CommandError, isInbox, sendCommand, serveCommands } from "../src/bus.js";

// Subjects carry this file's suffix: the nats-server is shared with other test files.
const subject = (name: string) => `test.bus.${randomBytes(4).toString("hex")}.${name}`;
let nc: NatsConnection;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
});
afterAll(async () => {
  await nc?.drain();
});

async function failure(p: Promise<unknown>): Promise<CommandError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CommandError);
  return err as CommandError;
}

describe("commands over NATS", () => {
  it("answers with the handler's result", async () => {
    const s = subject("ok");
    const sub = serveCommands<{ n: number }, { twice: number }>(nc, s, "q", async ({ n }) => ({
      twice: n * 2,
    }));
    expect(await sendCommand(nc, s, { n: 21 })).toEqual({ twice: 42 });
    sub.unsubscribe();
  });

  it("refuses an answer larger than the server's max_payload, saying so, and goes on serving", async () => {
    const s = subject("huge");
    const sub = serveCommands<{ big: boolean }, { text: string }>(nc, s, "q", async ({ big }) => ({
      text: "x".repeat(big ? (nc.info?.max_payload ?? 1 << 20) : 3),
    }));
    const err = await failure(sendCommand(nc, s, { big: true }));
    expect(err.code).toBe("invalid_argument");
    expect(err.message).toMatch(/is larger than the messaging allows; ask for less$/);
    // The subscription is still there: the next request is answered.
    expect(await sendCommand(nc, s, { big: false })).toEqual({ text: "xxx" });
    sub.unsubscribe();
  });

  it("passes a refusal's platform code back, terminal", async () => {
    const s = subject("refused");
    const sub = serveCommands(nc, s, "q", async () => {
      throw new DomainError("machine m1 is stopped", "failed_precondition");
    });
    const err = await failure(sendCommand(nc, s, {}));
    expect([err.code, err.message, err.retryable, isRetryable(err)]).toEqual([
      "failed_precondition",
      "machine m1 is stopped",
      false,
      false,
    ]);
    sub.unsubscribe();
  });

  it("turns an unexpected failure of the handler into internal, and tells the service", async () => {
    const s = subject("broken");
    const seen: unknown[] = [];
    const sub = serveCommands(
      nc,
      s,
      "q",
      async () => {
        throw new TypeError("x is undefined");
      },
      (e) => seen.push(e),
    );
    const err = await failure(sendCommand(nc, s, {}));
    expect(err.code).toBe("internal");
    expect(err.message).toMatch(/x is undefined/);
    expect(seen).toHaveLength(1);
    sub.unsubscribe();
  });

  it("answers a failure that passes (the handler's store did not acknowledge) as unavailable, retryable", async () => {
    const s = subject("store-away");
    const seen: unknown[] = [];
    const sub = serveCommands(
      nc,
      s,
      "q",
      async () => {
        throw new PublishTimeoutError("ev.host.h1", 5000);
      },
      (e) => seen.push(e),
    );
    const err = await failure(sendCommand(nc, s, {}));
    expect([err.code, err.retryable]).toEqual(["unavailable", true]);
    expect(err.message).toMatch(/no acknowledgement for ev.host.h1/);
    expect(seen).toEqual([]);
    sub.unsubscribe();
  });

  it("recognises no responders by the client's error type: unavailable, retryable", async () => {
    const err = await failure(sendCommand(nc, subject("nobody"), {}));
    expect([err.code, err.retryable]).toEqual(["unavailable", true]);
    expect(err.cause instanceof RequestError && err.cause.isNoResponders()).toBe(true);
  });

  it("recognises a handler that does not answer in time: timeout, retryable", async () => {
    const s = subject("silent");
    const sub = nc.subscribe(s, { callback: () => undefined });
    const err = await failure(sendCommand(nc, s, {}, 200));
    expect([err.code, err.retryable]).toEqual(["timeout", true]);
    expect(err.message).toMatch(/did not answer within 200 ms/);
    expect(err.cause).toBeInstanceOf(TimeoutError);
    sub.unsubscribe();
  });

  it("reads a code it does not know as internal", async () => {
    const s = subject("future");
    const sub = nc.subscribe(s, {
      callback: (_, msg) => {
        msg.respond(JSON.stringify({ error: { code: "brand_new", message: "?" } }));
      },
    });
    const err = await failure(sendCommand(nc, s, {}));
    expect(err.code).toBe("internal");
    sub.unsubscribe();
  });

  it("carries out no request whose answer would go anywhere but an inbox (a stream's subject, say)", async () => {
    const s = subject("foreign-reply");
    const prefix = `test.bus.${randomBytes(4).toString("hex")}.stored`;
    const jsm = await jetstreamManager(nc);
    const stream = `BUS_REPLY_${randomBytes(4).toString("hex")}`;
    await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`] });
    let handled = 0;
    const sub = serveCommands(nc, s, "q", async () => {
      handled++;
      return { done: true };
    });
    try {
      // A requester names a stream's subject as the reply: a served answer would be stored there.
      nc.publish(s, JSON.stringify({}), { reply: `${prefix}.org.o1` });
      nc.publish(s, "not json", { reply: `${prefix}.org.o2` });
      // A real request after them, on the same connection: answered once those two were seen.
      expect(await sendCommand(nc, s, {})).toEqual({ done: true });
      expect(handled).toBe(1);
      await nc.flush();
      expect((await jsm.streams.info(stream)).state.messages).toBe(0);
      // The stream does store what is published to it: the count above is not for want of one.
      await jsm.jetstream().publish(`${prefix}.control`, "x");
      expect((await jsm.streams.info(stream)).state.messages).toBe(1);
    } finally {
      sub.unsubscribe();
      await jsm.streams.delete(stream);
    }
  });

  it("takes nats.js's inboxes and the platform users' for inboxes, and nothing else", () => {
    expect(isInbox("_INBOX.abc.def")).toBe(true);
    expect(isInbox("_INBOX_gateway.abc")).toBe(true);
    expect(isInbox("_INBOX_host-agent-h1.abc")).toBe(true);
    expect(isInbox("ev.secret.org.o1")).toBe(false);
    expect(isInbox("$KV.hangar-leases.x")).toBe(false);
    expect(isInbox("INBOX.x")).toBe(false);
  });
});
