import {
  appDecider,
  appsStream,
  hostDecider,
  hostsStream,
  machinesStream,
  volumesStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream } from "@hangar/eventstore";
import {
  CommandError,
  type PlaceRequest,
  type PlaceResult,
  type PlaceVolumeRequest,
  sendCommand,
  subjects,
} from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Placement } from "../src/placement.js";

// A nats-server of its own: placement uses the platform's fixed stream names.
let server: NatsServer;
let nc: NatsConnection;
let store: EventStore;
const instances: Placement[] = [];
const logger = createLogger("placement-test", { level: "silent" });

async function registerHost(
  hostId: string,
  cpus: number,
  memoryMb: number,
  region = "local",
  diskGb = 0,
  dedicationId = "",
  dedicationOrg = "",
) {
  const hosts = new CommandHandler(store, hostsStream, hostDecider);
  await hosts.handle(
    hostId,
    {
      type: "RegisterHost",
      hostId,
      region,
      cpus,
      memoryMb,
      address: "127.0.0.1",
      underlayIp: "",
      diskGb,
      dedicationId,
      dedicationOrg,
    },
    {
      commandId: `register-${hostId}-${cpus}-${memoryMb}-${diskGb}-${dedicationId}-${dedicationOrg}`,
    },
  );
  nc.publish(subjects.heartbeat(hostId), JSON.stringify({ host_id: hostId }));
}

/** Waits until every placement instance's hosts view holds the hosts. */
async function waitForHosts(ids: string[]): Promise<void> {
  for (const p of instances) {
    const view = (p as unknown as { hosts: { get(id: string): { status: string } | undefined } }).hosts;
    for (let i = 0; i < 200 && !ids.every((id) => (view.get(id)?.status ?? "absent") !== "absent"); i++)
      await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits until every placement instance's apps view holds the app. */
async function waitForApp(app: string): Promise<void> {
  for (const p of instances) {
    const view = (p as unknown as { apps: { get(id: string): { status: string } | undefined } }).apps;
    for (let i = 0; i < 200 && view.get(app)?.status !== "created"; i++)
      await new Promise((r) => setTimeout(r, 10));
  }
}

const place = (req: Partial<PlaceRequest> & { machine_id: string }) =>
  sendCommand<PlaceRequest, PlaceResult>(nc, subjects.place, {
    app: "a",
    region: "local",
    cpus: 1,
    memory_mb: 256,
    ...req,
  });

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  store = await EventStore.connect(nc);
  for (const s of [hostsStream, machinesStream, volumesStream, appsStream]) await ensureStream(store.jsm, s);
  await registerHost("h1", 4, 1024);
  await registerHost("h2", 4, 1024);
  // Two placement instances share the requests through the queue group.
  for (let i = 0; i < 2; i++) {
    const nci = await connect({ servers: server.url });
    instances.push(await Placement.start({ nc: nci, store: await EventStore.connect(nci), logger }));
  }
});

afterAll(async () => {
  for (const p of instances) await p.stop();
  await nc?.drain();
  await server?.stop();
});

describe("placement with two instances", () => {
  it("never reserves beyond a host's capacity, and never places a machine twice", async () => {
    // 2 hosts x 4 slots of 256 MB: 8 fit. 20 machines ask at once, each twice.
    const ids = Array.from({ length: 20 }, (_, i) => `m${i}`);
    const results = await Promise.allSettled(
      ids.flatMap((id) => [place({ machine_id: id }), place({ machine_id: id })]),
    );
    const placed = new Map<string, Set<string>>();
    let refused = 0;
    results.forEach((r, i) => {
      const id = ids[Math.floor(i / 2)] as string;
      if (r.status === "fulfilled") {
        const hosts = placed.get(id) ?? new Set();
        hosts.add(r.value.host_id);
        placed.set(id, hosts);
      } else {
        expect(r.reason).toBeInstanceOf(CommandError);
        expect((r.reason as CommandError).code).toBe("insufficient_capacity");
        refused++;
      }
    });
    expect(refused).toBeGreaterThan(0);
    const handler = new CommandHandler(store, hostsStream, hostDecider, { cacheSize: 0 });
    let reserved = 0;
    for (const h of ["h1", "h2"]) {
      const { state } = await handler.handle(
        h,
        { type: "ReleaseMachine", machineId: "none", reason: "probe" },
        {
          commandId: `probe-${h}`,
        },
      );
      if (state.status === "absent") throw new Error("host missing");
      expect(state.usedMemoryMb).toBeLessThanOrEqual(state.memoryMb);
      expect(state.usedCpus).toBeLessThanOrEqual(state.cpus);
      reserved += Object.keys(state.reservations).length;
      for (const id of Object.keys(state.reservations)) {
        // The room a machine holds is on the one host every answer named.
        expect(placed.get(id)).toEqual(new Set([h]));
      }
    }
    expect(reserved).toBe(8);
    // Every machine told it has room has it on exactly one host.
    for (const hosts of placed.values()) expect(hosts.size).toBe(1);
    expect(placed.size).toBe(8);
  });

  it("refuses a machine larger than any host with insufficient_capacity", async () => {
    const err = await place({ machine_id: "huge", memory_mb: 64 * 1024 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).code).toBe("insufficient_capacity");
    expect((err as CommandError).message).toMatch(/larger than any host in region local/);
  });

  it("refuses a GPU machine with insufficient_capacity, naming the GPU, and reserves nothing", async () => {
    const err = await place({ machine_id: "gpu", gpus: 1, gpu_kind: "l40s" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).code).toBe("insufficient_capacity");
    expect((err as CommandError).message).toMatch(
      /asks for 1 GPU \(l40s\), and no host of this platform has a GPU/,
    );
    const handler = new CommandHandler(store, hostsStream, hostDecider, { cacheSize: 0 });
    for (const h of ["h1", "h2"]) {
      const { state } = await handler.handle(
        h,
        { type: "ReleaseMachine", machineId: "none", reason: "probe" },
        { commandId: `gpu-probe-${h}` },
      );
      if (state.status === "absent") throw new Error("host missing");
      expect(state.reservations.gpu).toBeUndefined();
    }
  });

  it("releases a reservation whose machine was never created, after the orphan period", async () => {
    const p = instances[0] as Placement;
    const before = await p.reconcile(Date.now());
    expect(before).toBe(0);
    const released = await p.reconcile(Date.now() + 60_000);
    expect(released).toBe(8);
    const handler = new CommandHandler(store, hostsStream, hostDecider, { cacheSize: 0 });
    const { state } = await handler.handle(
      "h1",
      { type: "ReleaseMachine", machineId: "none", reason: "probe" },
      {
        commandId: "probe-after",
      },
    );
    expect(state.status !== "absent" && Object.keys(state.reservations)).toEqual([]);
  });
});

const placeVolume = (req: Partial<PlaceVolumeRequest> & { volume_id: string }) =>
  sendCommand<PlaceVolumeRequest, PlaceResult>(nc, subjects.placeVolume, {
    app: "a",
    region: "disk",
    size_gb: 4,
    ...req,
  });
const refusal = (p: Promise<unknown>): Promise<CommandError> =>
  p.then(
    () => new CommandError("not refused", "internal"),
    (e: unknown) => e as CommandError,
  );

describe("volume placement", () => {
  beforeAll(async () => {
    // Region "disk": d1 with 10 GB of volume disk, d2 with 6 GB.
    await registerHost("d1", 4, 1024, "disk", 10);
    await registerHost("d2", 4, 1024, "disk", 6);
  });

  it("puts a volume on the host with the most free disk, answers a repeat with the same host, and never overbooks", async () => {
    const first = await placeVolume({ volume_id: "vol_a" });
    expect(first).toEqual({ host_id: "d1", region: "disk" });
    expect(await placeVolume({ volume_id: "vol_a" })).toEqual(first);
    // d1 has 6 free, d2 6: ties go by name; then d2 has the most.
    expect((await placeVolume({ volume_id: "vol_b" })).host_id).toBe("d1");
    expect((await placeVolume({ volume_id: "vol_c" })).host_id).toBe("d2");
    const err = await refusal(placeVolume({ volume_id: "vol_d", size_gb: 3 }));
    expect(err.code).toBe("insufficient_capacity");
    expect(err.message).toMatch(
      /no host in region disk has 3 GB of volume disk free; d1: 2 GB free, d2: 2 GB free/,
    );
  });

  it("keeps a volume of the same name off the hosts it is told to avoid", async () => {
    const err = await refusal(placeVolume({ volume_id: "vol_e", size_gb: 1, avoid_host_ids: ["d1", "d2"] }));
    expect(err.code).toBe("insufficient_capacity");
    expect(err.message).toMatch(/not on d1, d2/);
  });

  it("grows a volume where it is, and refuses growth beyond that host's disk", async () => {
    // vol_c holds 4 of d2's 6 GB: 6 fits there, 7 does not, and it never moves to d1.
    expect(await placeVolume({ volume_id: "vol_c", size_gb: 6 })).toEqual({ host_id: "d2", region: "disk" });
    const err = await refusal(placeVolume({ volume_id: "vol_c", size_gb: 7 }));
    expect(err.code).toBe("insufficient_capacity");
    expect(err.message).toMatch(/host d2 has no disk room for 7 GB/);
  });

  it("refuses a bad volume placement with invalid_argument, and appends nothing to HOSTS", async () => {
    const lastSeq = async () => (await store.jsm.streams.info(hostsStream.name)).state.last_seq;
    const before = await lastSeq();
    for (const bad of [
      { volume_id: "" },
      { volume_id: 5 },
      { volume_id: "vol_bad", app: "" },
      { volume_id: "vol_bad", region: undefined },
      { volume_id: "vol_bad", size_gb: undefined },
      { volume_id: "vol_bad", size_gb: "3" },
      { volume_id: "vol_bad", size_gb: 0 },
      { volume_id: "vol_bad", size_gb: 1.5 },
      { volume_id: "vol_bad", host_id: 7 },
      { volume_id: "vol_bad", avoid_host_ids: "d1" },
      { volume_id: "vol_bad", avoid_host_ids: [1] },
    ]) {
      const err = await refusal(placeVolume(bad as unknown as PlaceVolumeRequest));
      expect(err.code, JSON.stringify(bad)).toBe("invalid_argument");
      expect(err.message).toMatch(/a volume placement needs volume_id, app, region and size_gb/);
    }
    expect(await lastSeq()).toBe(before);
  });

  it("places a machine on its volume's host or refuses, naming the host and why", async () => {
    expect(await place({ machine_id: "with-vol", region: "disk", host_id: "d2" })).toEqual({
      host_id: "d2",
      region: "disk",
    });
    const big = await refusal(
      place({ machine_id: "too-big", region: "disk", host_id: "d2", memory_mb: 4096 }),
    );
    expect(big.code).toBe("insufficient_capacity");
    expect(big.message).toMatch(/the machine's volume is on host d2, and host d2 has no room/);
    const wrongRegion = await refusal(place({ machine_id: "elsewhere", region: "local", host_id: "d2" }));
    expect(wrongRegion.message).toMatch(/is on host d2, which is in region disk, not local/);
    const hosts = new CommandHandler(store, hostsStream, hostDecider);
    await hosts.handle("d1", { type: "CordonHost", reason: "disk swap" }, { commandId: "cordon-d1" });
    const cordoned = await refusal(place({ machine_id: "on-cordoned", region: "disk", host_id: "d1" }));
    expect(cordoned.message).toMatch(/is on host d1, which is cordoned \(disk swap\)/);
    const gone = await refusal(place({ machine_id: "on-gone", region: "disk", host_id: "nowhere" }));
    expect(gone.message).toMatch(/host nowhere, which is gone/);
  });
});

describe("placement losing appends to other instances", () => {
  it("keeps trying a host that lost only races while it has room, and refuses only once it is full", async () => {
    // One host with room for 8: an instance whose every first append to it loses to another
    // instance's reservation (made just before it, as a rival instance would) still places, where
    // it used to answer insufficient_capacity after 3 lost appends with room left.
    await registerHost("r1", 8, 8 * 256, "race");
    const rivals = new CommandHandler(store, hostsStream, hostDecider);
    let rival = 0;
    let losses = 0;
    const racing = Object.create(store) as EventStore;
    racing.append = async (stream, id, events, opts) => {
      if (stream.name === hostsStream.name && id === "r1" && losses > 0) {
        losses--;
        const machineId = `rival-${rival++}`;
        await rivals.handle(
          "r1",
          { type: "ReserveMachine", machineId, app: "rival", cpus: 1, memoryMb: 256 },
          { commandId: `reserve-${machineId}` },
        );
      }
      return store.append(stream, id, events, opts);
    };
    const nci = await connect({ servers: server.url });
    const p = await Placement.start({ nc: nci, store: racing, logger });
    try {
      const req = { app: "a", region: "race", cpus: 1, memory_mb: 256 };
      losses = 4; // more than the 3 lost appends after which a host used to be given up
      expect(await p.place({ ...req, machine_id: "racer-1" })).toEqual({ host_id: "r1", region: "race" });
      expect(rival).toBe(4);
      // 5 of 8 taken: the next one fits after losing one race (7 of 8).
      losses = 1;
      expect((await p.place({ ...req, machine_id: "racer-2" })).host_id).toBe("r1");
      expect(rival).toBe(5);
      // A race lost to the last slot ends in a refusal for want of room, not a retry storm.
      losses = 1;
      const full = await p.place({ ...req, machine_id: "racer-3" }).catch((e: unknown) => e);
      expect(rival).toBe(6);
      expect(full).toMatchObject({ code: "insufficient_capacity" });
      // A host that loses every append for good is answered `unavailable` (ask again), not "full".
      await registerHost("r2", 8, 8 * 256, "storm");
      racing.append = async (stream, id, events, opts) => {
        if (stream.name === hostsStream.name && id === "r2") {
          // Other instances' appends to the host every time: a reservation and its release, which
          // leave the room as it was.
          const machineId = `storm-${rival++}`;
          await rivals.handle(
            "r2",
            { type: "ReserveMachine", machineId, app: "rival", cpus: 1, memoryMb: 256 },
            { commandId: `reserve-${machineId}` },
          );
          await rivals.handle(
            "r2",
            { type: "ReleaseMachine", machineId, reason: "storm" },
            { commandId: `release-${machineId}` },
          );
        }
        return store.append(stream, id, events, opts);
      };
      const storm = await p.place({ ...req, region: "storm", machine_id: "stormy" }).catch((e: unknown) => e);
      expect(storm).toMatchObject({ code: "unavailable" });
      expect((storm as Error).message).toMatch(
        /lost every append to other placement instances on host r2 for 11 rounds, and it may still have room; try again/,
      );
    } finally {
      await p.stop();
    }
  });
});

describe("host dedication (Fly's host_dedication_id)", () => {
  it("places a machine that asks for a dedication group only on its hosts, and one that does not only on shared hosts", async () => {
    // The dedicated host sorts first, so a shared machine placed there would be the filter missing.
    // App "a" (place()'s) is acme's; team-a is acme's group, team-c another organization's.
    const apps = new CommandHandler(store, appsStream, appDecider);
    await apps.handle("a", { type: "CreateApp", name: "a", orgSlug: "acme" }, { commandId: "create-app-a" });
    await registerHost("a-team-1", 4, 1024, "ded", 0, "team-a", "acme");
    await registerHost("b-team-c-1", 4, 1024, "ded", 0, "team-c", "other");
    await registerHost("z-shared-1", 1, 256, "ded");
    // place() does not retry: wait until both instances' views hold the hosts and the app.
    await waitForHosts(["a-team-1", "b-team-c-1", "z-shared-1"]);
    await waitForApp("a");
    const shared = await place({ machine_id: "s-m1", region: "ded" });
    expect(shared.host_id).toBe("z-shared-1");
    // z-shared-1 is full now: a shared machine is refused though a-team-1 has room.
    const sharedFull = await refusal(place({ machine_id: "s-m2", region: "ded" }));
    expect(sharedFull.code).toBe("insufficient_capacity");
    expect(sharedFull.message).toMatch(
      /shared hosts: those of a dedication group take only machines that ask for it/,
    );
    for (let i = 1; i <= 4; i++) {
      expect(
        (await place({ machine_id: `d-m${i}`, region: "ded", host_dedication_id: "team-a" })).host_id,
      ).toBe("a-team-1");
    }
    const full = await refusal(place({ machine_id: "d-m5", region: "ded", host_dedication_id: "team-a" }));
    expect(full.code).toBe("insufficient_capacity");
    expect(full.message).toMatch(/hosts of dedication team-a/);
    const unknown = await refusal(place({ machine_id: "x-m1", region: "ded", host_dedication_id: "team-b" }));
    expect(unknown.code).toBe("insufficient_capacity");
    expect(unknown.message).toMatch(
      /asks for host dedication team-b, and no live host in region ded belongs to it/,
    );
    // A host_dedication_id that is not a string is bad input, refused before anything is reserved.
    const bad = await refusal(
      place({ machine_id: "x-m3", region: "ded", host_dedication_id: 5 as unknown as string }),
    );
    expect(bad.code).toBe("invalid_argument");
    expect(bad.message).toMatch(/host_dedication_id is a string/);
    // Another organization's group is refused as one no host has: nothing says the name is taken.
    const others = await refusal(place({ machine_id: "x-m2", region: "ded", host_dedication_id: "team-c" }));
    expect(others.code).toBe("insufficient_capacity");
    expect(others.message).toMatch(
      /asks for host dedication team-c, and no live host in region ded belongs to it/,
    );
  });
});
