import { type HostEvent, type HostState, hostDecider, hostHasRoom } from "@hangar/domain";
import { describe, expect, it } from "vitest";
import { HostIndex } from "./host-index.js";
import type { GuestRequest, PlacementStrategy } from "./rank.js";

/** Hosts folded from their events, as the placement's view folds them, and fed to an index. */
class Fleet {
  readonly index = new HostIndex();
  readonly states = new Map<string, HostState>();

  apply(hostId: string, event: HostEvent): void {
    const previous = this.states.get(hostId);
    const state = hostDecider.evolve(previous ?? hostDecider.initialState(), event);
    this.states.set(hostId, state);
    this.index.update(state);
    if (event.type === "HostMachineReserved") this.index.reserved(event.data.machineId ?? "", hostId);
    if (event.type === "HostMachineReleased") this.index.released(event.data.machineId ?? "", hostId);
  }

  register(hostId: string, opts: { region?: string; cpus?: number; memoryMb?: number } = {}): void {
    this.apply(hostId, {
      type: "HostRegistered",
      data: {
        hostId,
        region: opts.region ?? "local",
        cpus: opts.cpus ?? 8,
        memoryMb: opts.memoryMb ?? 1024,
        address: "",
        underlayIp: "",
        diskGb: 10,
      },
    });
  }

  reserve(hostId: string, machineId: string, memoryMb: number, cpus = 1): void {
    this.apply(hostId, { type: "HostMachineReserved", data: { machineId, app: "a", cpus, memoryMb } });
  }

  release(hostId: string, machineId: string): void {
    this.apply(hostId, { type: "HostMachineReleased", data: { machineId, reason: "destroyed" } });
  }

  ranked(guest: GuestRequest, strategy: PlacementStrategy, usable: (id: string) => boolean = () => true) {
    return [...this.index.ranked(guest, strategy, usable)].map((h) => h.hostId);
  }
}

const guest = { region: "local", cpus: 1, memoryMb: 256 };

function fleet(): Fleet {
  const f = new Fleet();
  for (const id of ["empty", "half", "full", "other"])
    f.register(id, id === "other" ? { region: "fra" } : {});
  f.reserve("half", "m-half", 512);
  f.reserve("full", "m-full", 1024);
  return f;
}

describe("HostIndex ranking", () => {
  it("bin-packs onto the fullest host with room", () => {
    expect(fleet().ranked(guest, "binpack")).toEqual(["half", "empty"]);
  });

  it("spreads onto the emptiest host", () => {
    expect(fleet().ranked(guest, "spread")).toEqual(["empty", "half"]);
  });

  it("skips hosts that are not usable (no heartbeat) and cordoned hosts", () => {
    const f = fleet();
    f.register("cordoned");
    f.apply("cordoned", { type: "HostCordoned", data: { reason: "maintenance" } });
    expect(f.ranked(guest, "binpack", (id) => id !== "half")).toEqual(["empty"]);
    f.apply("cordoned", { type: "HostUncordoned", data: {} });
    expect(f.ranked(guest, "binpack", (id) => id !== "half")).toEqual(["cordoned", "empty"]);
  });

  it("places a guest only where the host's memory minus what its machines hold covers it", () => {
    // 768 MB held (machines started or stopped, until destroyed): 256 more fit exactly, 257 do not.
    const f = new Fleet();
    f.register("h1");
    f.reserve("h1", "m1", 768);
    expect(f.ranked(guest, "binpack")).toEqual(["h1"]);
    expect(f.ranked({ ...guest, memoryMb: 257 }, "binpack")).toEqual([]);
    expect(f.ranked({ ...guest, memoryMb: 257 }, "spread")).toEqual([]);
  });

  it("keeps the order as reservations come and go", () => {
    const f = fleet();
    f.reserve("empty", "m1", 768);
    expect(f.ranked(guest, "binpack")).toEqual(["empty", "half"]);
    f.release("empty", "m1");
    f.release("full", "m-full");
    expect(f.ranked(guest, "binpack")).toEqual(["half", "empty", "full"]);
    expect(f.ranked(guest, "spread")).toEqual(["empty", "full", "half"]);
  });

  it("skips hosts without CPUs left even when their memory has room", () => {
    const f = new Fleet();
    f.register("busy", { cpus: 2 });
    f.register("idle", { cpus: 2 });
    f.reserve("busy", "m1", 256, 2);
    expect(f.ranked(guest, "binpack")).toEqual(["idle"]);
  });

  it("leaves out a host without a CPU or a MB left, and takes it back when room is released", () => {
    const f = new Fleet();
    f.register("cpus", { cpus: 2 });
    f.register("memory", { memoryMb: 512 });
    f.reserve("cpus", "m1", 256, 2);
    f.reserve("memory", "m2", 512, 1);
    expect(f.ranked(guest, "binpack")).toEqual([]);
    expect(f.index.activeIn("local")).toBe(2);
    f.release("cpus", "m1");
    expect(f.ranked(guest, "binpack")).toEqual(["cpus"]);
  });

  it("forgets a removed host, and takes in a host registering again with more memory", () => {
    const f = fleet();
    f.apply("half", { type: "HostRemoved", data: {} });
    expect(f.ranked(guest, "binpack")).toEqual(["empty"]);
    expect(f.index.activeIn("local")).toBe(2);
    f.register("empty", { memoryMb: 2048 });
    expect(f.ranked({ ...guest, memoryMb: 1500 }, "binpack")).toEqual(["empty"]);
  });

  it("ranks as a full sort of the fleet would, over random fleets of mixed sizes", () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const f = new Fleet();
    for (let i = 0; i < 200; i++)
      f.register(`h${i}`, {
        region: i % 3 === 0 ? "fra" : "local",
        cpus: 2 + Math.floor(random() * 6),
        memoryMb: 512 * (1 + Math.floor(random() * 4)),
      });
    for (let step = 0; step < 2_000; step++) {
      const hostId = `h${Math.floor(random() * 200)}`;
      const h = f.states.get(hostId);
      if (!h || h.status === "absent") continue;
      const held = Object.keys(h.reservations);
      if (held.length > 0 && random() < 0.3) f.release(hostId, held[0] as string);
      else if (hostHasRoom(h, 1, 128)) f.reserve(hostId, `m${step}`, 128 * (1 + Math.floor(random() * 2)));
      if (step % 100 !== 0) continue;
      for (const strategy of ["binpack", "spread"] as const) {
        const g = { region: "local", cpus: 1, memoryMb: 128 * (1 + Math.floor(random() * 6)) };
        const sign = strategy === "binpack" ? 1 : -1;
        const free = (x: { memoryMb: number; usedMemoryMb: number }) =>
          (x.memoryMb - x.usedMemoryMb) / x.memoryMb;
        const freeCpu = (x: { cpus: number; usedCpus: number }) => (x.cpus - x.usedCpus) / x.cpus;
        const expected = [...f.states.values()]
          .filter((s) => s.status === "active" && s.region === g.region && hostHasRoom(s, g.cpus, g.memoryMb))
          .map((s) => s as Exclude<HostState, { status: "absent" }>)
          .sort(
            (a, b) =>
              sign * (free(a) - free(b)) ||
              sign * (freeCpu(a) - freeCpu(b)) ||
              (a.hostId < b.hostId ? -1 : a.hostId > b.hostId ? 1 : 0),
          )
          .map((s) => s.hostId);
        expect(f.ranked(g, strategy)).toEqual(expected);
      }
    }
  });
});

describe("HostIndex.from", () => {
  it("starts at a rank of the hosts that fit, skips hosts not usable, and wraps round to the best", () => {
    const f = fleet();
    const from = (skip: number, strategy: PlacementStrategy, usable: (id: string) => boolean = () => true) =>
      f.index.from(guest, strategy, skip, usable)?.hostId;
    expect([0, 1, 2].map((skip) => from(skip, "binpack"))).toEqual(["half", "empty", "half"]);
    expect([0, 1].map((skip) => from(skip, "spread"))).toEqual(["empty", "half"]);
    expect(from(0, "binpack", (id) => id !== "half")).toBe("empty");
    expect(from(1, "binpack", (id) => id !== "empty")).toBe("half");
    expect(from(0, "binpack", () => false)).toBeUndefined();
    expect(f.index.from({ ...guest, region: "nowhere" }, "binpack", 0, () => true)).toBeUndefined();
  });
});

describe("HostIndex machines", () => {
  it("knows which host holds each machine's room, until it is released", () => {
    const f = fleet();
    expect(f.index.hostOf("m-half")).toBe("half");
    f.reserve("empty", "m1", 256);
    expect(f.index.hostOf("m1")).toBe("empty");
    f.release("empty", "m1");
    expect(f.index.hostOf("m1")).toBeUndefined();
    expect(f.index.hostOf("nowhere")).toBeUndefined();
  });
});
