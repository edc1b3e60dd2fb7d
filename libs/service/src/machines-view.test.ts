import { type MachineCommand, type MachineEvent, type MachineState, machineDecider } from "@hangar/domain";
import type { RecordedEvent } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import { type MachineChange, MachineIndex } from "./machines-view.js";

/** Decides commands on a machine's state like the command handler, and records each decision as one message. */
class History {
  private readonly states = new Map<string, MachineState>();
  private seq = 0;

  constructor(private readonly index: MachineIndex) {}

  run(app: string, machineId: string, command: MachineCommand, timeUnixMs = this.seq * 1000): MachineChange {
    const aggregateId = `${app}.${machineId}`;
    const previous = this.states.get(aggregateId) ?? machineDecider.initialState();
    const decided = machineDecider.decide(command, previous);
    const seq = ++this.seq;
    const events: RecordedEvent<MachineEvent>[] = decided.map((event, index) => ({
      event,
      eventId: `${seq}-${index}`,
      aggregateId,
      timeUnixMs,
      correlationId: "",
      causationId: "",
      seq,
      index,
    }));
    let state = previous;
    for (const e of decided) state = machineDecider.evolve(state, e);
    this.states.set(aggregateId, state);
    const change = { aggregateId, previous, state, events, live: true };
    this.index.apply(change);
    return change;
  }
}

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

const started = (hostId: string): MachineCommand => ({
  type: "RecordStarted",
  hostId,
  pid: 42,
  privateIp: "10.0.0.2",
  privateIpv6: "",
  port: 8080,
  startTime: 1,
  adopted: false,
});

describe("MachineIndex", () => {
  it("indexes machines by id, by app and by host, oldest first", () => {
    const index = new MachineIndex();
    const h = new History(index);
    h.run("web", "m2", create("web", "m2", "h1"));
    h.run("api", "m1", create("api", "m1", "h2"));
    h.run("web", "m1", create("web", "m1", "h2"));

    expect(index.size).toBe(3);
    expect(index.ofApp("web").map((e) => e.state.machineId)).toEqual(["m2", "m1"]);
    expect(index.ofApp("api").map((e) => e.aggregateId)).toEqual(["api.m1"]);
    expect(index.onHost("h2").map((e) => e.aggregateId)).toEqual(["api.m1", "web.m1"]);
    expect(index.onHost("h1").map((e) => e.aggregateId)).toEqual(["web.m2"]);
    expect(index.apps().sort()).toEqual(["api", "web"]);
    expect(index.get("web.m1")?.createdSeq).toBe(3);
    expect(index.ofApp("nope")).toEqual([]);
    // Machine ids are unique in practice; two apps sharing one still resolve by host.
    expect(index.onHostById("h2", "m1")?.aggregateId).toBe("api.m1");
    expect(index.onHostById("h1", "m2")?.aggregateId).toBe("web.m2");
    expect(index.onHost("nope")).toEqual([]);
  });

  it("keeps each machine's state, creation, update and start times current", () => {
    const index = new MachineIndex();
    const h = new History(index);
    h.run("web", "m1", create("web", "m1", "h1"), 1_000);
    expect(index.get("web.m1")).toMatchObject({
      createdSeq: 1,
      createdAtMs: 1_000,
      updatedAtMs: 1_000,
      startedAtMs: 0,
      state: { status: "starting" },
    });
    h.run("web", "m1", started("h1"), 5_000);
    expect(index.get("web.m1")).toMatchObject({
      createdSeq: 1,
      createdAtMs: 1_000,
      updatedAtMs: 5_000,
      startedAtMs: 5_000,
      state: { status: "started", pid: 42 },
    });
    h.run("web", "m1", { type: "DestroyMachine", force: true, nowMs: 0 }, 7_000);
    // Destroyed machines stay listed: the API shows them with include_deleted, and the monitor counts them.
    expect(index.ofApp("web").map((e) => e.state.status)).toEqual(["destroying"]);
    expect(index.get("web.m1")?.updatedAtMs).toBe(7_000);
  });

  it("moves a machine to the host that reports its start", () => {
    const index = new MachineIndex();
    const h = new History(index);
    h.run("web", "m1", create("web", "m1", "h1"));
    h.run("web", "m1", started("h3"));
    expect(index.onHost("h1")).toEqual([]);
    expect(index.onHost("h3").map((e) => e.aggregateId)).toEqual(["web.m1"]);
    expect(index.onHostById("h1", "m1")).toBeUndefined();
    expect(index.onHostById("h3", "m1")?.aggregateId).toBe("web.m1");
    expect(index.onHostById("h3", "m2")).toBeUndefined();
  });

  it("ignores a change that leaves no machine", () => {
    const index = new MachineIndex();
    const absent = machineDecider.initialState();
    index.apply({ aggregateId: "web.m9", previous: absent, state: absent, events: [], live: false });
    expect(index.size).toBe(0);
    expect(index.get("web.m9")).toBeUndefined();
  });
});
