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
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type MachineChange, MachinesView } from "../src/machines-view.js";

// The nats-server is shared with other test files: this file's stream has its own prefix.
const stream = prefixedStream(machinesStream, `mview${randomBytes(4).toString("hex")}`);
let nc: NatsConnection;
let store: EventStore;
let handler: CommandHandler<MachineState, MachineCommand, MachineEvent>;
let commands = 0;

const create = (app: string, machineId: string, hostId: string): MachineCommand => ({
  type: "CreateMachine",
  machineId,
  app,
  name: machineId,
  region: "ams",
  instanceId: "i1",
  configJson: "{}",
  skipLaunch: false,
  hostId,
});

function run(app: string, machineId: string, command: MachineCommand) {
  return handler.handle(machineAggregateId(app, machineId), command, { commandId: `c${++commands}` });
}

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, stream);
  handler = new CommandHandler(store, stream, machineDecider);
});

afterAll(async () => {
  store?.close();
  await nc?.drain();
});

describe("MachinesView", () => {
  it("folds the history, then the live tail, and tells a listener subscribed before replay of every change", async () => {
    await run("web", "m1", create("web", "m1", "h1"));
    await run("api", "m2", create("api", "m2", "h1"));
    const view = MachinesView.create(store, { stream });
    const changes: MachineChange[] = [];
    view.subscribe((c) => {
      // The index has folded the change before listeners hear of it.
      expect(view.get(c.aggregateId)?.status).toBe(c.state.status === "absent" ? undefined : c.state.status);
      changes.push(c);
    });
    expect(view.lastSeq).toBe(0);
    await view.follow();
    await view.caughtUp;
    expect(view.live).toBe(true);
    expect(changes.map((c) => [c.aggregateId, c.live])).toEqual([
      ["web.m1", false],
      ["api.m2", false],
    ]);
    expect(view.onHost("h1").map((e) => e.aggregateId)).toEqual(["web.m1", "api.m2"]);

    const res = await run("web", "m3", create("web", "m3", "h2"));
    await view.waitForSeq(res.seq);
    expect(view.lastSeq).toBe(res.seq);
    expect(view.seqOf("web.m3")).toBe(res.seq);
    expect(view.ofApp("web").map((e) => e.state.machineId)).toEqual(["m1", "m3"]);
    expect(view.machine("web", "m3")?.hostId).toBe("h2");
    const last = changes.at(-1);
    expect(last).toMatchObject({ aggregateId: "web.m3", live: true, previous: { status: "absent" } });
    expect(last?.state.status).toBe("starting");

    // Refusals: following twice, and waiting for a sequence nobody appends.
    await expect(view.follow()).rejects.toThrow(/already following/);
    await expect(view.waitForSeq(res.seq + 1_000, 200)).rejects.toMatchObject({
      code: "timeout",
      message: expect.stringMatching(/did not reach stream sequence/),
    });
    // A stop answers whoever still waits at once, instead of when their timers fire.
    const waiting = expect(view.waitForSeq(res.seq + 1_000, 60_000)).rejects.toMatchObject({
      code: "unavailable",
      message: "the view stopped",
    });
    await view.stop();
    await waiting;
  });
});
