import type { HostState } from "@hangar/domain";
import { describe, expect, it } from "vitest";
import { noRoomMessage } from "./rank.js";

const host = (hostId: string, usedMemoryMb: number, region = "local"): HostState => ({
  status: "active",
  hostId,
  region,
  cpus: 8,
  memoryMb: 1024,
  address: "",
  underlayIp: "",
  cordonReason: "",
  reservations: {},
  usedCpus: 0,
  usedMemoryMb,
  volumes: {},
  usedDiskGb: 0,
  diskGb: 10,
});
const guest = { region: "local", cpus: 1, memoryMb: 256 };

describe("noRoomMessage when hosts are full", () => {
  it("says the host is full rather than too small when a guest would fit an empty one", () => {
    expect(noRoomMessage([host("h1", 768)], { ...guest, memoryMb: 512 })).toBe(
      "insufficient capacity: no host in region local has 1 cpus and 512 MB free right now",
    );
  });
});

describe("noRoomMessage", () => {
  it("says when a guest is larger than any host", () => {
    expect(noRoomMessage([host("a", 0)], { region: "local", cpus: 1, memoryMb: 4096 })).toMatch(
      /larger than any host in region local \(largest: 8 cpus, 1024 MB\)/,
    );
  });

  it("names the regions that have hosts", () => {
    expect(noRoomMessage([host("a", 0, "fra")], guest)).toMatch(
      /no host in region local \(regions with hosts: fra\)/,
    );
  });
});
