// A machine create that mounts a volume, through the gateway's MachineCommands on a real nats-server
// and event store: the volume is attached before placement is asked, placement is asked for the
// volume's host, and a create that placement refuses gives the volume back and records no machine.
// The volume service's attach and detach are an in-memory MachineVolumes (the e2e runs the real one).
import { appsStream, machinesStream, type Volume } from "@hangar/domain";
import { DomainError, EventStore, ensureStream } from "@hangar/eventstore";
import { CommandError, type PlaceRequest, type PlaceResult, serveCommands, subjects } from "@hangar/service";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Catalog } from "../src/machines/catalog.js";
import { MachineCommands } from "../src/machines/commands.js";
import type { MachineVolumes } from "../src/volumes/mounts.js";

/** The volume service's attach and detach over volumes in a map, with a log of the calls. */
class MemoryVolumes implements MachineVolumes {
  readonly calls: string[] = [];
  readonly volumes = new Map<string, Volume>();

  volumesOf(app: string): Volume[] {
    return [...this.volumes.values()].filter((v) => v.app === app);
  }
  async attach(_app: string, id: string, machineId: string): Promise<void> {
    this.calls.push(`attach ${id} ${machineId}`);
    const v = this.volumes.get(id) as Volume;
    if (v.attached_machine_id && v.attached_machine_id !== machineId)
      throw new DomainError(`volume ${id} is attached to machine ${v.attached_machine_id}`, "conflict");
    v.attached_machine_id = machineId;
  }
  async detach(_app: string, id: string, machineId: string): Promise<void> {
    this.calls.push(`detach ${id} ${machineId}`);
    const v = this.volumes.get(id) as Volume;
    if (v.attached_machine_id === machineId) v.attached_machine_id = null;
  }
}

function volume(id: string, hostId: string): Volume {
  return {
    id,
    app: "web",
    org: "personal",
    name: "data",
    region: "local",
    host_id: hostId,
    state: "created",
    size_gb: 1,
    fstype: "ext4",
    encrypted: false,
    snapshot_retention: 5,
    auto_backup_enabled: true,
    attached_machine_id: null,
    attached_alloc_id: null,
    created_at: "2026-12-05T07:00:00.000Z",
    snapshots: [],
    create_command_id: `create-${id}`,
  };
}

let server: NatsServer;
let nc: NatsConnection;
let catalog: Catalog;
let commands: MachineCommands;
const volumes = new MemoryVolumes();
const placed: PlaceRequest[] = [];
let refuse = false;

beforeAll(async () => {
  // A server of its own: MachineCommands uses the platform's stream names and placement subject.
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  const store = await EventStore.connect(nc);
  for (const s of [appsStream, machinesStream]) await ensureStream(store.jsm, s);
  serveCommands<PlaceRequest, PlaceResult>(nc, subjects.place, "placement", async (req) => {
    placed.push(req);
    if (refuse)
      throw new DomainError(
        `insufficient capacity: host ${req.host_id} has no room`,
        "insufficient_capacity",
      );
    return { host_id: req.host_id ?? "h0", region: req.region };
  });
  catalog = await Catalog.start(store);
  commands = new MachineCommands(nc, store, catalog, "local", volumes);
  await commands.createApp("web", "personal");
});

afterAll(async () => {
  await catalog?.stop();
  await nc?.close();
  await server?.stop();
});

beforeEach(() => {
  placed.length = 0;
  volumes.calls.length = 0;
  refuse = false;
});

const config = (mount: Record<string, string>) => ({ image: "nginx", mounts: [{ ...mount, path: "/data" }] });

describe("a machine create that mounts a volume", () => {
  it("attaches it, then places the machine on the volume's host, recording the mount by id", async () => {
    volumes.volumes.set("vol_a", volume("vol_a", "h1"));
    const m = await commands.createMachine("web", { config: config({ name: "data" }) });
    const id = m.state.machineId;
    expect(volumes.calls).toEqual([`attach vol_a ${id}`]);
    expect(placed).toMatchObject([{ machine_id: id, host_id: "h1", region: "local" }]);
    expect(m.state.hostId).toBe("h1");
    expect(JSON.parse(m.state.configJson).mounts).toEqual([{ name: "data", volume: "vol_a", path: "/data" }]);
    expect(volumes.volumes.get("vol_a")?.attached_machine_id).toBe(id);
  });

  it("a keyed create resumed after its first attempt attached the volume by name finds that volume", async () => {
    const v = volume("vol_resume", "h3");
    v.name = "resume";
    v.attached_machine_id = "m0resume00001";
    volumes.volumes.set(v.id, v);
    const m = await commands.createMachine("web", {
      machineId: "m0resume00001",
      config: config({ name: "resume" }),
    });
    expect(m.state.machineId).toBe("m0resume00001");
    expect(m.state.hostId).toBe("h3");
    expect(volumes.calls).toEqual(["attach vol_resume m0resume00001"]);
    // Another machine id still finds no unattached volume of that name.
    const err = await commands.createMachine("web", { config: config({ name: "resume" }) }).catch((e) => e);
    expect(err).toMatchObject({ code: "not_found" });
  });

  it("gives the volume back when placement refuses, and records no machine", async () => {
    volumes.volumes.set("vol_b", volume("vol_b", "h2"));
    refuse = true;
    const before = catalog.machinesOf("web").length;
    const err = await commands.createMachine("web", { config: config({ volume: "vol_b" }) }).catch((e) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect(err).toMatchObject({ code: "insufficient_capacity", message: expect.stringContaining("host h2") });
    const id = placed[0]?.machine_id;
    expect(volumes.calls).toEqual([`attach vol_b ${id}`, `detach vol_b ${id}`]);
    expect(volumes.volumes.get("vol_b")?.attached_machine_id).toBeNull();
    expect(catalog.machinesOf("web")).toHaveLength(before);
  });

  it("asks placement nothing when the volume is attached to another machine (409)", async () => {
    const err = await commands.createMachine("web", { config: config({ volume: "vol_a" }) }).catch((e) => e);
    expect(err).toMatchObject({
      code: "conflict",
      message: expect.stringMatching(/^volume vol_a is attached to machine/),
    });
    expect(placed).toEqual([]);
  });
});
