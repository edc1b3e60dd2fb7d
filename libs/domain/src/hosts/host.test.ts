import { deciderSpec, isDomainError } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import { hostDecider } from "./host.js";

const spec = deciderSpec(hostDecider);
const host = {
  hostId: "h1",
  region: "local",
  cpus: 4,
  memoryMb: 8192,
  address: "127.0.0.1",
  underlayIp: "",
  diskGb: 10,
};
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
  const reserveVolume = (volumeId: string, sizeGb: number) =>
    ({ type: "ReserveVolume", volumeId, app: "a", sizeGb }) as const;
  const volumeReserved = (volumeId: string, sizeGb: number) => ({
    type: "HostVolumeReserved" as const,
    data: { volumeId, app: "a", sizeGb },
  });

  it("reserves disk room for a volume once, and an extend replaces its size", () => {
    spec
      .given([registered])
      .when(reserveVolume("v1", 4))
      .then([volumeReserved("v1", 4)]);
    spec
      .given([registered, volumeReserved("v1", 4)])
      .when(reserveVolume("v1", 4))
      .then([]);
    // 4 GB held, 10 GB of disk: growing v1 to 10 GB fits because its own 4 GB count as free.
    spec
      .given([registered, volumeReserved("v1", 4)])
      .when(reserveVolume("v1", 10))
      .then([volumeReserved("v1", 10)]);
  });

  it("never reserves disk beyond the host's volumes disk", () => {
    spec
      .given([registered, volumeReserved("v1", 4), volumeReserved("v2", 4)])
      .when(reserveVolume("v3", 3))
      .thenThrows((e) => isDomainError(e, "insufficient_capacity"));
    spec
      .given([registered, volumeReserved("v1", 4), volumeReserved("v1", 9)])
      .when(reserveVolume("v2", 2))
      .thenThrows((e) => isDomainError(e, "insufficient_capacity"));
    spec
      .given([registered])
      .when(reserveVolume("v1", 0))
      .thenThrows((e) => isDomainError(e, "invalid_argument"));
  });

  it("frees a released volume's disk, and releasing twice decides nothing", () => {
    const released = { type: "HostVolumeReleased" as const, data: { volumeId: "v1" } };
    const held = [registered, volumeReserved("v1", 8)];
    spec.given(held).when({ type: "ReleaseVolume", volumeId: "v1" }).then([released]);
    spec
      .given([...held, released])
      .when({ type: "ReleaseVolume", volumeId: "v1" })
      .then([]);
    spec
      .given([...held, released])
      .when(reserveVolume("v2", 8))
      .then([volumeReserved("v2", 8)]);
  });

  it("reserves no disk on a cordoned or unknown host", () => {
    spec
      .given([registered, { type: "HostCordoned", data: { reason: "maintenance" } }])
      .when(reserveVolume("v1", 1))
      .thenThrows((e) => isDomainError(e, "insufficient_capacity"));
    spec
      .given([])
      .when(reserveVolume("v1", 1))
      .thenThrows((e) => isDomainError(e, "not_found"));
  });
});

describe("host dedication", () => {
  it("registers a host's dedication group, and keeps it through reservations and releases", () => {
    const dedicated = {
      type: "HostRegistered" as const,
      data: { ...host, dedicationId: "team-a", dedicationOrg: "acme" },
    };
    spec
      .given([])
      .when({ type: "RegisterHost", ...host, dedicationId: "team-a", dedicationOrg: "acme" })
      .then([dedicated]);
    // Registering again with the same group decides nothing; a new group is a new registration.
    spec
      .given([dedicated])
      .when({ type: "RegisterHost", ...host, dedicationId: "team-a", dedicationOrg: "acme" })
      .then([]);
    spec
      .given([registered])
      .when({ type: "RegisterHost", ...host, dedicationId: "team-a", dedicationOrg: "acme" })
      .then([dedicated]);
    let state = hostDecider.evolve(hostDecider.initialState(), dedicated);
    state = hostDecider.evolve(state, {
      type: "HostMachineReserved",
      data: { machineId: "m1", app: "a", cpus: 1, memoryMb: 256 },
    });
    state = hostDecider.evolve(state, {
      type: "HostMachineReleased",
      data: { machineId: "m1", reason: "x" },
    });
    expect(state.status !== "absent" && [state.dedicationId, state.dedicationOrg]).toEqual([
      "team-a",
      "acme",
    ]);
  });
});
