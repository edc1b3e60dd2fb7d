// The proxy's wake as a command: CommandWaker asks, the gateway's serveWakes records the start on
// the machine's aggregate. Checked: a start is recorded once per sequence the proxy saw, whoever asks
// how often; a refusal comes back as WakeRefusedError with the decider's code; no gateway is an error,
// not a refusal.
import { randomBytes } from "node:crypto";
import {
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  machineDecider,
  machinesStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream, prefixedStream } from "@hangar/eventstore";
import { serveWakes } from "@hangar/gateway";
import { CommandError } from "@hangar/service";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { WakeRefusedError } from "../src/engine/mod.js";
import { CommandWaker } from "../src/wake.js";

const suffix = randomBytes(4).toString("hex");
const stream = prefixedStream(machinesStream, `proxywake${suffix}`);
const subject = `proxywake${suffix}.cmd.machines.wake`;
const app = `wake-${suffix}`;

let nc: NatsConnection;
let store: EventStore;
let machines: CommandHandler<MachineState, MachineCommand, MachineEvent>;
let served: Subscription;
let seen = 0;
const waker = () => new CommandWaker(nc, { machineSeq: () => seen, subject });

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, stream);
  machines = new CommandHandler(store, stream, machineDecider);
  served = serveWakes(nc, store, { stream, subject });
});

afterAll(async () => {
  served?.unsubscribe();
  store?.close();
  await nc?.drain();
});

let commands = 0;
const meta = () => ({ commandId: `test-${suffix}-${++commands}` });

/** A machine that was created without a start: stopped as far as waking goes. */
async function createdMachine(machineId: string): Promise<number> {
  const r = await machines.handle(
    machineAggregateId(app, machineId),
    {
      type: "CreateMachine",
      machineId,
      app,
      name: machineId,
      region: "local",
      instanceId: `${machineId}-1`,
      configJson: "{}",
      skipLaunch: true,
      hostId: "h1",
    },
    meta(),
  );
  return r.seq;
}

async function lastSeq(): Promise<number> {
  return (await store.jsm.streams.info(stream.name)).state.last_seq;
}

it("records one start per sequence the proxy saw, however often and by however many it is asked", async () => {
  seen = await createdMachine("m1");
  await Promise.all([waker().start(app, sleeping("m1")), waker().start(app, sleeping("m1"))]);
  // One message: the start request.
  expect(await lastSeq()).toBe(seen + 1);
  await waker().start(app, sleeping("m1"));
  expect(await lastSeq()).toBe(seen + 1);
});

it("turns a refusal into WakeRefusedError with the decider's code", async () => {
  const before = await lastSeq();
  const refused = await waker()
    .start(app, sleeping("absent"))
    .catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(WakeRefusedError);
  expect((refused as WakeRefusedError).code).toBe("not_found");
  expect(await lastSeq()).toBe(before);
});

it("refuses a wake whose ids are not subject tokens, and stores nothing", async () => {
  const before = await lastSeq();
  const refused = await new CommandWaker(nc, { machineSeq: () => 1, subject })
    .start("a.b", sleeping("m1"))
    .catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(WakeRefusedError);
  expect((refused as WakeRefusedError).code).toBe("invalid_argument");
  expect(await lastSeq()).toBe(before);
});

it("fails, without calling it a refusal, when no gateway answers", async () => {
  const failed = await new CommandWaker(nc, { machineSeq: () => 1, subject: `${subject}.nobody` })
    .start(app, sleeping("m1"))
    .catch((e: unknown) => e);
  expect(failed).toBeInstanceOf(CommandError);
  expect(failed).not.toBeInstanceOf(WakeRefusedError);
  expect((failed as CommandError).code).toBe("unavailable");
});

function sleeping(machineId: string) {
  return { machineId, region: "local", status: "stopped" as const };
}
