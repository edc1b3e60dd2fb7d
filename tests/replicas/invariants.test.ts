import type { HostEvent, MachineEvent, ScalingEvent } from "@hangar/domain";
import { describe, expect, it } from "vitest";
import { checkInvariants, type EventLog, type LoggedEvent } from "./invariants.js";

let seq = 0;
function at<E>(aggregateId: string, event: E, causationId = `cmd-${seq + 1}`): LoggedEvent<E> {
  seq++;
  return { aggregateId, seq, causationId, event };
}

const created = (app: string, id: string, cmd?: string): LoggedEvent<MachineEvent> =>
  at(`${app}.${id}`, { type: "MachineCreated", data: { machineId: id, app, hostId: "h1" } }, cmd);
const registered = (host: string, cpus: number, memoryMb: number): LoggedEvent<HostEvent> =>
  at(host, { type: "HostRegistered", data: { hostId: host, cpus, memoryMb } });
const reserved = (host: string, id: string, memoryMb: number): LoggedEvent<HostEvent> =>
  at(host, { type: "HostMachineReserved", data: { machineId: id, app: "a", cpus: 1, memoryMb } });
const released = (host: string, id: string): LoggedEvent<HostEvent> =>
  at(host, { type: "HostMachineReleased", data: { machineId: id, reason: "destroyed" } });
const decided = (app: string, decisionId: string, machines: string[]): LoggedEvent<ScalingEvent> =>
  at(app, {
    type: "ScaleDecided",
    data: {
      decisionId,
      actions: machines.map((machineId) => ({ kind: "create", machineId, region: "local" })),
    },
  });
const finished = (
  app: string,
  decisionId: string,
  machineId: string,
  cmd?: string,
): LoggedEvent<ScalingEvent> =>
  at(app, { type: "ScaleActionFinished", data: { decisionId, machineId, outcome: "done" } }, cmd);

const empty = (): EventLog => ({ machines: [], hosts: [], scaling: [] });

describe("checkInvariants", () => {
  it("passes a clean log and reports what it counted", () => {
    const log: EventLog = {
      machines: [created("a", "m1"), created("a", "m2")],
      hosts: [
        registered("h1", 4, 1024),
        reserved("h1", "m1", 512),
        reserved("h1", "m2", 512),
        released("h1", "m1"),
      ],
      scaling: [decided("a", "d1", ["m2"]), finished("a", "d1", "m2")],
    };
    const report = checkInvariants(log, { acknowledged: ["m1", "m2"] });
    expect(report.violations).toEqual([]);
    expect(report).toMatchObject({ machinesCreated: 2, decisions: 1, actionsFinished: 1 });
    expect(report.hostPeaks.h1).toEqual({ memoryMb: 1024, cpus: 2, capacityMemoryMb: 1024, capacityCpus: 4 });
  });

  it("reports a host's smallest capacity, not its last (a host that came back larger)", () => {
    const log: EventLog = {
      ...empty(),
      hosts: [registered("h1", 4, 1024), reserved("h1", "m1", 512), registered("h1", 8, 4096)],
    };
    expect(checkInvariants(log).hostPeaks.h1).toEqual({
      memoryMb: 512,
      cpus: 1,
      capacityMemoryMb: 1024,
      capacityCpus: 4,
    });
  });

  it("catches a machine created twice, and one acknowledged but lost", () => {
    const log = { ...empty(), machines: [created("a", "m1"), created("b", "m1")] };
    const { violations } = checkInvariants(log, { acknowledged: ["m1", "m9"] });
    expect(violations).toHaveLength(2);
    expect(violations[0]).toMatch(/machine m1 created twice/);
    expect(violations[1]).toMatch(/machine m9 was acknowledged but never created/);
  });

  it("catches a scaling step carried out twice: one command id in two messages of a machine", () => {
    const start = (n: number): LoggedEvent<MachineEvent> =>
      at("a.m1", { type: "MachineStartRequested", data: { instanceId: `i${n}` } }, "scale-d1-start-m1");
    const log = { ...empty(), machines: [created("a", "m1"), start(1), start(2)] };
    const { violations } = checkInvariants(log);
    expect(violations).toHaveLength(1);
    expect(violations[0]).toMatch(/MACHINES: command scale-d1-start-m1 appended twice to a\.m1/);
  });

  it("catches a decision recorded twice, an action finished twice and a finish never decided", () => {
    const log = {
      ...empty(),
      machines: [created("a", "m1")],
      scaling: [
        decided("a", "d1", ["m1"]),
        decided("a", "d1", ["m1"]),
        finished("a", "d1", "m1"),
        finished("a", "d1", "m1"),
        finished("a", "d2", "m7"),
      ],
    };
    const { violations } = checkInvariants(log);
    expect(violations).toEqual([
      expect.stringMatching(/decision d1 recorded twice/),
      expect.stringMatching(/decision d1 names machine m1 of a, already in unfinished decision d1/),
      expect.stringMatching(/d1\/m1 finished twice/),
      expect.stringMatching(/d2\/m7 finished but never decided/),
    ]);
  });

  it("catches a host over capacity at any point, even if a release comes later", () => {
    const log = {
      ...empty(),
      hosts: [
        registered("h1", 8, 1024),
        reserved("h1", "m1", 768),
        reserved("h1", "m2", 512),
        released("h1", "m1"),
      ],
    };
    const { violations, hostPeaks } = checkInvariants(log);
    expect(violations).toHaveLength(1);
    expect(violations[0]).toMatch(/host h1 over capacity at seq \d+: 2\/8 CPUs, 1280\/1024 MiB/);
    expect(hostPeaks.h1?.memoryMb).toBe(1280);
  });

  it("catches a machine holding room on two hosts at once", () => {
    const log = {
      ...empty(),
      hosts: [
        registered("h1", 8, 4096),
        registered("h2", 8, 4096),
        reserved("h1", "m1", 256),
        reserved("h2", "m1", 256),
      ],
    };
    expect(checkInvariants(log).violations).toEqual([
      expect.stringMatching(/m1 reserved on h2 while it holds room on h1/),
    ]);
  });

  it("catches a machine reserved twice on one host, and adds its room twice as the host's fold does", () => {
    const log = {
      ...empty(),
      hosts: [registered("h1", 8, 1024), reserved("h1", "m1", 512), reserved("h1", "m1", 768)],
    };
    const { violations, hostPeaks } = checkInvariants(log);
    expect(violations).toEqual([
      expect.stringMatching(/machine m1 reserved twice on h1/),
      expect.stringMatching(/host h1 over capacity at seq \d+: 2\/8 CPUs, 1280\/1024 MiB/),
    ]);
    expect(hostPeaks.h1?.memoryMb).toBe(1280);
  });

  it("catches a host command carried out twice", () => {
    const r = (host: string, id: string) => ({ ...reserved(host, id, 128), causationId: "place-m1" });
    const log = {
      ...empty(),
      hosts: [registered("h1", 8, 1024), r("h1", "m1"), released("h1", "m1"), r("h1", "m1")],
    };
    expect(checkInvariants(log).violations).toEqual([
      expect.stringMatching(/HOSTS: command place-m1 appended twice to h1/),
    ]);
  });

  it("reports an event without a command id instead of skipping it", () => {
    const log = { ...empty(), machines: [created("a", "m1", "")] };
    expect(checkInvariants(log).violations).toEqual([
      expect.stringMatching(/MACHINES: event MachineCreated of a\.m1 at seq \d+ has no command id/),
    ]);
  });

  it("catches two decisions for one machine while its action is unfinished, and a create done without its machine", () => {
    const log = {
      ...empty(),
      machines: [created("a", "m1")],
      scaling: [
        decided("a", "d1", ["m1", "m2"]),
        // Another scheduler, deciding on the same load: its own decision id, the same machine.
        decided("a", "d2", ["m2"]),
        finished("a", "d1", "m1"),
        finished("a", "d1", "m2"),
        // Once the first action ended, a decision may name the machine again.
        decided("a", "d3", ["m1"]),
      ],
    };
    expect(checkInvariants(log).violations).toEqual([
      expect.stringMatching(/decision d2 names machine m2 of a, already in unfinished decision d1/),
      expect.stringMatching(/d1\/m2 finished done but machine m2 was never created/),
    ]);
  });
});
