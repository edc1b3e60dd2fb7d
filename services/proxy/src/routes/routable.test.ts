import { type ExistingMachine, type MachineState, machineDecider } from "@hangar/domain";
import { describe, expect, it } from "vitest";
import { hasServices, isRoutable } from "./routable.js";

// A started machine as the decider folds it, so the test follows the real state shape.
function startedMachine(): ExistingMachine {
  let s: MachineState = machineDecider.initialState();
  const events = machineDecider.decide(
    {
      type: "CreateMachine",
      app: "hello",
      machineId: "m1",
      name: "m1",
      region: "local",
      hostId: "h1",
      instanceId: "i1",
      configJson: "{}",
      skipLaunch: false,
    },
    s,
  );
  for (const e of events) s = machineDecider.evolve(s, e);
  if (s.status === "absent") throw new Error("machine not created");
  return { ...s, status: "started", port: 8080, privateIp: "127.77.0.2" };
}

describe("isRoutable", () => {
  it("routes to a started machine with no checks, or with checks not run yet or passing", () => {
    const m = startedMachine();
    expect(isRoutable(m)).toBe(true);
    expect(isRoutable({ ...m, checks: { alive: { status: "passing", output: "" } } })).toBe(true);
  });

  it("never routes to a machine with a critical check, or one stopped, cordoned or without a port", () => {
    const m = startedMachine();
    const critical = {
      alive: { status: "passing", output: "" },
      http: { status: "critical", output: "500" },
    };
    expect(isRoutable({ ...m, checks: critical })).toBe(false);
    expect(isRoutable({ ...m, status: "stopped" })).toBe(false);
    expect(isRoutable({ ...m, cordoned: true })).toBe(false);
    expect(isRoutable({ ...m, port: 0 })).toBe(false);
  });
});

describe("hasServices", () => {
  it("is true for a machine whose config has a service, false without one (a worker) or without a config", () => {
    const web = JSON.stringify({ services: [{ internal_port: 8080, ports: [{ port: 80 }] }] });
    expect(hasServices({ configJson: web })).toBe(true);
    expect(hasServices({ configJson: JSON.stringify({ services: [] }) })).toBe(false);
    expect(hasServices({ configJson: JSON.stringify({ init: { cmd: ["node", "worker.js"] } }) })).toBe(false);
    expect(hasServices({ configJson: "" })).toBe(false);
    expect(hasServices({ configJson: "not json" })).toBe(false);
  });
});
