import { hostDecider, hostsStream, machinesStream } from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream } from "@hangar/eventstore";
import { CommandError, type PlaceRequest, type PlaceResult, sendCommand, subjects } from "@hangar/service";
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

async function registerHost(hostId: string, cpus: number, memoryMb: number, region = "local") {
  const hosts = new CommandHandler(store, hostsStream, hostDecider);
  await hosts.handle(
    hostId,
    { type: "RegisterHost", hostId, region, cpus, memoryMb, address: "127.0.0.1", underlayIp: "" },
    {
      commandId: `register-${hostId}-${cpus}-${memoryMb}`,
    },
  );
  nc.publish(subjects.heartbeat(hostId), JSON.stringify({ host_id: hostId }));
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
  for (const s of [hostsStream, machinesStream]) await ensureStream(store.jsm, s);
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
