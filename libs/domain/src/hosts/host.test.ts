import { deciderSpec, isDomainError } from "@hangar/eventstore";
import { describe, it } from "vitest";
import { hostDecider } from "./host.js";

const spec = deciderSpec(hostDecider);
const host = { hostId: "h1", region: "local", cpus: 4, memoryMb: 8192, address: "127.0.0.1", underlayIp: "" };
const registered = { type: "HostRegistered" as const, data: host };

describe("host decider", () => {
  it("registers a new host", () => {
    spec
      .given([])
      .when({ type: "RegisterHost", ...host })
      .then([registered]);
  });

  it("decides nothing when the same host registers again unchanged", () => {
    spec
      .given([registered])
      .when({ type: "RegisterHost", ...host })
      .then([]);
  });

  it("registers again when the capacity changed", () => {
    spec
      .given([registered])
      .when({ type: "RegisterHost", ...host, cpus: 8 })
      .then([{ type: "HostRegistered", data: { ...host, cpus: 8 } }]);
  });

  it("refuses a host without capacity", () => {
    spec
      .given([])
      .when({ type: "RegisterHost", ...host, cpus: 0 })
      .thenThrows((e) => isDomainError(e, "invalid_argument"));
  });

  it("cordons once and uncordons once", () => {
    const cordoned = { type: "HostCordoned" as const, data: { reason: "maintenance" } };
    spec.given([registered]).when({ type: "CordonHost", reason: "maintenance" }).then([cordoned]);
    spec.given([registered, cordoned]).when({ type: "CordonHost", reason: "again" }).then([]);
    spec
      .given([registered, cordoned])
      .when({ type: "UncordonHost" })
      .then([{ type: "HostUncordoned", data: {} }]);
  });

  it("refuses to cordon an unknown host", () => {
    spec
      .given([])
      .when({ type: "CordonHost", reason: "x" })
      .thenThrows((e) => isDomainError(e, "not_found"));
  });

  const reserve = (machineId: string, cpus = 1, memoryMb = 2048) =>
    ({ type: "ReserveMachine", machineId, app: "a", cpus, memoryMb }) as const;
  const reserved = (machineId: string, cpus = 1, memoryMb = 2048) => ({
    type: "HostMachineReserved" as const,
    data: { machineId, app: "a", cpus, memoryMb },
  });

  it("reserves room for a machine once", () => {
    spec
      .given([registered])
      .when(reserve("m1"))
      .then([reserved("m1")]);
    spec
      .given([registered, reserved("m1")])
      .when(reserve("m1"))
      .then([]);
  });

  it("never reserves beyond the host's capacity", () => {
    const full = [registered, reserved("m1"), reserved("m2"), reserved("m3"), reserved("m4")];
    spec
      .given(full)
      .when(reserve("m5", 1, 1))
      .thenThrows((e) => isDomainError(e, "insufficient_capacity"));
    spec
      .given([registered])
      .when(reserve("big", 1, 9000))
      .thenThrows((e) => isDomainError(e, "insufficient_capacity"));
  });

  it("frees the room of a released machine, and releasing twice decides nothing", () => {
    const full = [registered, reserved("m1"), reserved("m2"), reserved("m3"), reserved("m4")];
    const released = { type: "HostMachineReleased" as const, data: { machineId: "m1", reason: "destroyed" } };
    spec.given(full).when({ type: "ReleaseMachine", machineId: "m1", reason: "destroyed" }).then([released]);
    spec
      .given([...full, released])
      .when({ type: "ReleaseMachine", machineId: "m1", reason: "again" })
      .then([]);
    spec
      .given([...full, released])
      .when(reserve("m5"))
      .then([reserved("m5")]);
  });

  it("places nothing on a cordoned host", () => {
    spec
      .given([registered, { type: "HostCordoned", data: { reason: "maintenance" } }])
      .when(reserve("m1"))
      .thenThrows((e) => isDomainError(e, "insufficient_capacity"));
  });
});
