import { deciderSpec, isDomainError } from "@hangar/eventstore";
import { describe, it } from "vitest";
import { type MachineCommand, type MachineEvent, machineDecider } from "./machine.js";

const spec = deciderSpec(machineDecider);

const create: Extract<MachineCommand, { type: "CreateMachine" }> = {
  type: "CreateMachine",
  machineId: "m1",
  app: "hello",
  name: "m1-name",
  region: "local",
  instanceId: "i1",
  configJson: '{"image":"dir:/srv/hello"}',
  skipLaunch: false,
};
const { type: _, ...createdData } = create;
const created: MachineEvent = { type: "MachineCreated", data: createdData };
const startRequested: MachineEvent = { type: "MachineStartRequested", data: { instanceId: "i1" } };
const started: MachineEvent = { type: "MachineStarted", data: { hostId: "h1", pid: 42 } };
const stopRequested: MachineEvent = { type: "MachineStopRequested", data: { signal: "SIGINT", timeoutS: 5 } };

describe("machine decider", () => {
  it("creates and asks for a start in one decision", () => {
    spec.given([]).when(create).then([created, startRequested]);
  });

  it("creates without a start when skip_launch is set", () => {
    spec
      .given([])
      .when({ ...create, skipLaunch: true })
      .then([{ type: "MachineCreated", data: { ...createdData, skipLaunch: true } }]);
  });

  it("refuses to create a machine twice", () => {
    spec
      .given([created])
      .when(create)
      .thenThrows((e) => isDomainError(e, "already_exists"));
  });

  it("records the host agent's start of a starting machine", () => {
    spec
      .given([created, startRequested])
      .when({ type: "RecordStarted", hostId: "h1", pid: 42 })
      .then([started]);
  });

  it("decides nothing when asked to start a machine that is already started", () => {
    spec.given([created, startRequested, started]).when({ type: "StartMachine" }).then([]);
  });

  it("stops a started machine with the requested signal and timeout", () => {
    spec
      .given([created, startRequested, started])
      .when({ type: "StopMachine", signal: "SIGINT", timeoutS: 5 })
      .then([stopRequested]);
  });

  it("marks an exit after a stop request as requested", () => {
    spec
      .given([created, startRequested, started, stopRequested])
      .when({ type: "RecordExited", exitCode: 0, signal: "SIGINT" })
      .then([{ type: "MachineExited", data: { exitCode: 0, signal: "SIGINT", requested: true } }]);
  });

  it("marks a crash as not requested", () => {
    spec
      .given([created, startRequested, started])
      .when({ type: "RecordExited", exitCode: 137, signal: "SIGKILL" })
      .then([{ type: "MachineExited", data: { exitCode: 137, signal: "SIGKILL", requested: false } }]);
  });

  it("refuses to destroy a started machine without force", () => {
    spec
      .given([created, startRequested, started])
      .when({ type: "DestroyMachine", force: false })
      .thenThrows((e) => isDomainError(e, "failed_precondition"));
  });

  it("destroys a started machine with force", () => {
    spec
      .given([created, startRequested, started])
      .when({ type: "DestroyMachine", force: true })
      .then([{ type: "MachineDestroyRequested", data: { force: true } }]);
  });

  it("treats a destroyed machine as gone", () => {
    spec
      .given([
        created,
        { type: "MachineDestroyRequested", data: { force: false } },
        { type: "MachineDestroyed", data: {} },
      ])
      .when({ type: "StartMachine" })
      .thenThrows((e) => isDomainError(e, "not_found"));
  });

  it("refuses commands for a machine that does not exist", () => {
    spec
      .given([])
      .when({ type: "StopMachine", signal: "SIGINT", timeoutS: 5 })
      .thenThrows((e) => isDomainError(e, "not_found"));
  });
});
