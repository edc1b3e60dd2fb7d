import { type ExistingMachine, type MachineStatus, machineDecider } from "@hangar/domain";
import { describe, expect, it } from "vitest";
import { oneOffEnd } from "./orchestrator.js";

/** A machine as the decider makes it (MachineCreated), then in `status` with `over`. */
function machine(status: MachineStatus, over: Partial<ExistingMachine> = {}): ExistingMachine {
  const created = machineDecider.evolve(machineDecider.initialState(), {
    type: "MachineCreated",
    data: { machineId: "m1", app: "a", name: "n", region: "local", instanceId: "i1", configJson: "{}" },
  }) as ExistingMachine;
  return { ...created, status, ...over };
}

describe("oneOffEnd (a release_command's or a machine check's machine)", () => {
  it("waits while the machine is not created yet or runs, within the timeout", () => {
    expect(oneOffEnd(undefined, false, 300_000)).toBeUndefined();
    expect(oneOffEnd(machine("created"), false, 300_000)).toBeUndefined();
    expect(oneOffEnd(machine("started"), false, 300_000)).toBeUndefined();
  });

  it("gives the exit code of a machine that stopped or went after exiting", () => {
    expect(oneOffEnd(machine("stopped", { lastExitCode: 0 }), false, 1_000)).toEqual({
      exitCode: 0,
      reason: "",
    });
    expect(oneOffEnd(machine("stopped", { lastExitCode: 3 }), true, 1_000)).toEqual({
      exitCode: 3,
      reason: "",
    });
    expect(oneOffEnd(machine("destroyed", { lastExitCode: 1 }), false, 1_000)).toEqual({
      exitCode: 1,
      reason: "",
    });
  });

  it("says what went wrong otherwise, worded to follow what ran", () => {
    expect(oneOffEnd(undefined, true, 300_000, "no host has room")).toEqual({
      exitCode: -1,
      reason: "could not be started within 300 s: no host has room",
    });
    expect(oneOffEnd(undefined, true, 60_000)).toEqual({
      exitCode: -1,
      reason: "could not be started within 60 s",
    });
    expect(oneOffEnd(machine("failed", { failure: "image not found" }), false, 1_000)).toEqual({
      exitCode: -1,
      reason: "could not start: image not found",
    });
    expect(oneOffEnd(machine("destroyed"), false, 1_000)).toEqual({
      exitCode: -1,
      reason: "was destroyed before it exited",
    });
    expect(oneOffEnd(machine("started"), true, 120_000)).toEqual({
      exitCode: -1,
      reason: "did not exit within 120 s",
    });
  });
});
