import { type MachineEvent, machineDecider } from "@hangar/domain";
import { describe, expect, it } from "vitest";
import { toMachineSummaryView, toMachineView } from "./backend.js";

/** A machine started with these addresses, as the catalog holds it. */
function startedWith(privateIp: string, privateIpv6: string) {
  const events: MachineEvent[] = [
    {
      type: "MachineCreated",
      data: {
        machineId: "m1",
        app: "hello",
        name: "m1-name",
        region: "local",
        instanceId: "i1",
        configJson: '{"image":"registry.local/hello:1"}',
        skipLaunch: false,
        hostId: "h1",
      },
    },
    { type: "MachineStartRequested", data: { instanceId: "i1" } },
    {
      type: "MachineStarted",
      data: { hostId: "h1", pid: 42, privateIp, privateIpv6, port: 8080, startTime: 7, adopted: false },
    },
  ];
  const state = events.reduce(machineDecider.evolve, machineDecider.initialState());
  if (state.status === "absent") throw new Error("the machine does not exist");
  return { state, createdAtMs: 0, updatedAtMs: 0, events: [], checkUpdatedAtMs: {}, versions: [] };
}

describe("a machine's view", () => {
  it("shows the 6PN address as private_ip, as Fly does", () => {
    expect(toMachineView(startedWith("172.30.0.2", "fdaa:1:2:3::4")).private_ip).toBe("fdaa:1:2:3::4");
  });

  it("shows the v4 address of a machine without 6PN", () => {
    expect(toMachineView(startedWith("127.77.0.2", "")).private_ip).toBe("127.77.0.2");
  });

  it("leaves config, checks, events and host_status out of a summary, as Fly's summary=true does", () => {
    const summary = toMachineSummaryView(startedWith("127.77.0.2", "fdaa:1:2:3::4"));
    expect(Object.keys(summary).sort()).toEqual([
      "created_at",
      "id",
      "image_ref",
      "instance_id",
      "name",
      "private_ip",
      "region",
      "state",
      "updated_at",
    ]);
    expect(summary.image_ref.repository).toBe("hello");
  });
});
