import { deciderSpec, isDomainError } from "@hangar/eventstore";
import { describe, it } from "vitest";
import { hostDecider } from "./host.js";

const spec = deciderSpec(hostDecider);
const host = { hostId: "h1", region: "local", cpus: 4, memoryMb: 8192, address: "127.0.0.1" };
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
});
