import type { HostState } from "@hangar/domain";
import { describe, expect, it } from "vitest";
import { noRoomMessage, rankHosts } from "./rank.js";

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
const alive = () => true;
const guest = { region: "local", cpus: 1, memoryMb: 256 };

describe("rankHosts", () => {
  const hosts = [host("empty", 0), host("half", 512), host("full", 1024), host("other", 0, "fra")];

  it("bin-packs onto the fullest host with room", () => {
    expect(rankHosts(hosts, guest, "binpack", alive).map((h) => h.hostId)).toEqual(["half", "empty"]);
  });

  it("spreads onto the emptiest host", () => {
    expect(rankHosts(hosts, guest, "spread", alive).map((h) => h.hostId)).toEqual(["empty", "half"]);
  });

  it("skips hosts that stopped sending heartbeats and cordoned hosts", () => {
    const cordoned = { ...host("cordoned", 0), status: "cordoned" } as HostState;
    const ranked = rankHosts([...hosts, cordoned], guest, "binpack", (id) => id !== "half");
    expect(ranked.map((h) => h.hostId)).toEqual(["empty"]);
  });
});

describe("memory is never overcommitted", () => {
  it("places a guest only where the host's memory minus what its machines hold covers it", () => {
    // 768 MB held (machines started or stopped, until destroyed): 256 more fit exactly, 257 do not.
    const held = [host("h1", 768)];
    expect(rankHosts(held, guest, "binpack", alive).map((h) => h.hostId)).toEqual(["h1"]);
    expect(rankHosts(held, { ...guest, memoryMb: 257 }, "binpack", alive)).toEqual([]);
    expect(rankHosts(held, { ...guest, memoryMb: 257 }, "spread", alive)).toEqual([]);
  });

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
