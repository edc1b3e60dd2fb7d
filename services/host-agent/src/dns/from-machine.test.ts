import type { ExistingMachine } from "@hangar/domain";
import { describe, expect, it } from "vitest";
import { dnsMachineOf } from "./from-machine.js";

const started: ExistingMachine = {
  status: "started",
  machineId: "m1",
  app: "b",
  name: "b-1",
  region: "ams",
  instanceId: "i1",
  configJson: JSON.stringify({ image: "x", metadata: { fly_process_group: "worker" } }),
  hostId: "h1",
  pid: 42,
  startTime: 1,
  privateIp: "10.128.0.2",
  privateIpv6: "fdaa:0:1:0:1::2",
  port: 8080,
  lastExitCode: null,
  stopSignal: "",
  stopTimeoutS: 0,
  startAfterExit: false,
  restarts: 0,
  cordoned: false,
  lease: null,
  checks: {},
  failure: "",
};

describe("dnsMachineOf", () => {
  it("takes a started machine's addresses, region, host and process group", () => {
    expect(dnsMachineOf(started, "acme")).toEqual({
      id: "m1",
      app: "b",
      org: "acme",
      region: "ams",
      hostId: "h1",
      processGroup: "worker",
      address: "fdaa:0:1:0:1::2",
      ipv4: "10.128.0.2",
      started: true,
      running: true,
    });
  });

  it("marks a stopping machine not started, and a config without a group as group app", () => {
    const m = dnsMachineOf({ ...started, status: "stopping", configJson: "{}" }, "acme");
    expect(m.started).toBe(false);
    expect(m.running).toBe(true);
    expect(m.processGroup).toBe("app");
    expect(dnsMachineOf({ ...started, status: "stopped", pid: 0 }, "acme").running).toBe(false);
  });
});
