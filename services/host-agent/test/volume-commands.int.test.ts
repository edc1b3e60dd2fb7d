import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  machineAggregateId,
  machineDecider,
  machinesStream,
  type VolumeCommand,
  volumeAggregateId,
  volumeDecider,
  volumesStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream } from "@hangar/eventstore";
import { CommandError, MachinesView, sendCommand, serveCommands, subjects } from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loopDevices, VolumeDisks } from "../src/volumes/disk.js";
import { HostVolumes } from "../src/volumes/host-volumes.js";
import { waitFor } from "./wait.js";

// The volume service's disk commands to one host, over a real nats-server (the platform's fixed
// VOLUMES and VOLUME_SNAPSHOTS names: a server of its own), on real loop devices.
const HOST = "h-volumes";
const APP = "vols";
const canLoop = process.getuid?.() === 0 && existsSync("/dev/loop-control");

let server: NatsServer;
let nc: NatsConnection;
let store: EventStore;
let root = "";
let disks: VolumeDisks;
let volumes: HostVolumes;
let machines: MachinesView;
const metrics = new Registry();
const live = "vol_0000000000000b01";
const destroyed = "vol_0000000000000b02";
const stray = "vol_0000000000000b03";
const made = "vol_0000000000000b04";
const restored = "vol_0000000000000b05";

async function record(volumeId: string, commands: VolumeCommand[]): Promise<void> {
  const handler = new CommandHandler(store, volumesStream, volumeDecider);
  for (const command of commands)
    await handler.handle(volumeAggregateId(APP, volumeId), command, {
      commandId: `${volumeId}-${command.type}`,
    });
}

function createCommand(volumeId: string): VolumeCommand {
  return {
    type: "CreateVolume",
    volumeId,
    app: APP,
    org: "acme",
    name: "data",
    region: "local",
    hostId: HOST,
    sizeGb: 1,
    snapshotRetention: 5,
    autoBackupEnabled: true,
    commandId: `create-${volumeId}`,
    at: new Date().toISOString(),
  };
}

function ask<R>(verb: string, payload: unknown): Promise<R> {
  return sendCommand<unknown, R>(nc, subjects.hostCommand(HOST, `volume.${verb}`), payload, 60_000);
}

async function refusal(verb: string, payload: unknown): Promise<string> {
  const err = await ask(verb, payload).then(
    () => {
      throw new Error(`volume.${verb} was not refused`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CommandError);
  return `${(err as CommandError).code}: ${(err as CommandError).message}`;
}

describe.runIf(canLoop)("a host's volume commands", () => {
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    store = await EventStore.connect(nc);
    for (const s of [volumesStream, machinesStream]) await ensureStream(store.jsm, s);
    root = await mkdtemp(join(tmpdir(), "hangar-volume-commands-"));
    disks = new VolumeDisks({
      dir: join(root, "volumes"),
      mountsDir: join(root, "mounts"),
      freezeTimeoutMs: 10_000,
    });
    // What the host holds before its agent starts: a live volume, one destroyed while the agent was
    // down, one no event names, and the temp file of a create a crash cut short.
    await record(live, [createCommand(live), { type: "MarkCreated" }]);
    await record(destroyed, [
      createCommand(destroyed),
      { type: "MarkCreated" },
      { type: "RequestDestroy" },
      { type: "CompleteDestroy" },
    ]);
    for (const id of [live, destroyed, stray]) await disks.create(id, 32 * 2 ** 20);
    await disks.mount(stray);
    // Mounted for a machine destroyed while the agent was down: the volume is no longer attached.
    await disks.mount(live);
    await writeFile(join(root, "volumes", `.${made}.tmp-0badf00d`), "half made");
    volumes = await HostVolumes.open({
      nc,
      store,
      hostId: HOST,
      disks,
      logger: createLogger("volume-commands-test", { level: "silent" }),
      registry: metrics,
      extendIntervalMs: 200,
      replicas: 1,
    });
    machines = await MachinesView.start(store);
    await volumes.start(machines);
  });
  afterAll(async () => {
    await volumes?.stop();
    await machines?.stop();
    for (const id of await disks.list()) {
      await disks.unmount(id);
      await disks.remove(id);
    }
    await nc?.close();
    await server?.stop();
    if (root) {
      expect((await loopDevices()).filter((d) => d.file.startsWith(root))).toEqual([]);
      await rm(root, { recursive: true, force: true });
    }
  });

  it("removes at start only the disks no event accounts for, and the temp files of interrupted creates", async () => {
    expect((await disks.list()).sort()).toEqual([live]);
    expect(disks.isMounted(stray)).toBe(false);
    expect(disks.isMounted(live)).toBe(false);
    expect(existsSync(join(root, "volumes", `.${made}.tmp-0badf00d`))).toBe(false);
  });

  it("makes, grows, snapshots, restores and deletes disks, each command idempotent", async () => {
    const stat = await ask<{ size_gb: number; mounted: boolean; blocks: number }>("create", {
      volume_id: made,
      app: APP,
      size_gb: 1,
    });
    expect(stat).toMatchObject({ size_gb: 1, mounted: false });
    expect(stat.blocks).toBeGreaterThan(0);
    expect(await ask("create", { volume_id: made, app: APP, size_gb: 1 })).toEqual(stat);

    const snap = await ask<{ size: number; digest: string; freeze_ms: number }>("snapshot", {
      volume_id: made,
      snapshot_id: "vs_0000000000000001",
    });
    expect(snap).toMatchObject({ size: 2 ** 30, freeze_ms: 0 });
    expect(snap.digest).toMatch(/^sha256:/);
    expect(await ask("snapshot", { volume_id: made, snapshot_id: "vs_0000000000000001" })).toEqual(snap);

    const grown = await ask<{ size_gb: number; needs_restart: boolean }>("extend", {
      volume_id: made,
      size_gb: 2,
    });
    expect(grown).toMatchObject({ size_gb: 2, needs_restart: false });

    const copy = await ask<{ size_gb: number }>("create", {
      volume_id: restored,
      app: APP,
      size_gb: 2,
      snapshot: { volume_id: made, snapshot_id: "vs_0000000000000001" },
    });
    expect(copy.size_gb).toBe(2);

    const stats = await ask<Record<string, { size_gb: number }>>("stat", {
      volume_ids: [made, restored, stray],
    });
    expect(Object.keys(stats).sort()).toEqual([made, restored]);

    const text = await metrics.metrics();
    expect(text).toContain(`hangar_host_volume_size_bytes{volume_id="${made}"} ${2 * 2 ** 30}`);
    expect(text).toMatch(/hangar_host_volume_snapshot_seconds_count\{outcome="ok"\} 2/);

    for (const id of [made, restored])
      expect(await ask("delete", { volume_id: id })).toEqual({ deleted: true });
    expect(disks.exists(made)).toBe(false);
  });

  it("unmounts a volume detached while the agent runs", async () => {
    await record(live, [{ type: "AttachVolume", machineId: "m-gone" }]);
    await disks.mount(live);
    await record(live, [{ type: "DetachVolume", machineId: "m-gone", reason: "machine destroyed" }]);
    await waitFor("the unmount", () => (disks.isMounted(live) ? undefined : true));
    expect(disks.exists(live)).toBe(true);
  });

  it("removes the disk of a volume destroyed while the agent runs", async () => {
    const ending = "vol_0000000000000b06";
    await record(ending, [createCommand(ending), { type: "MarkCreated" }]);
    await ask("create", { volume_id: ending, app: APP, size_gb: 1 });
    await record(ending, [{ type: "RequestDestroy" }, { type: "CompleteDestroy" }]);
    await waitFor("the disk's removal", () => (disks.exists(ending) ? undefined : true));
  });

  it("asks the volume service to grow a mounted volume whose use crossed its mount's threshold", async () => {
    const asked: unknown[] = [];
    // The volume service's side, on the real bus: it records what it was asked.
    // Its own host's subject: host agents may publish no other (nats-permissions.ts).
    const sub = serveCommands(nc, subjects.volumeAutoExtend(HOST), "volume", async (req: unknown) => {
      asked.push(req);
      return {};
    });
    try {
      const mount = {
        volume: live,
        path: "/data",
        extend_threshold_percent: 50,
        add_size_gb: 2,
        size_gb_limit: 2,
      };
      const handler = new CommandHandler(store, machinesStream, machineDecider);
      const id = machineAggregateId(APP, "m-extend");
      const configJson = JSON.stringify({ image: "dir:/srv", mounts: [mount] });
      await handler.handle(
        id,
        {
          type: "CreateMachine",
          machineId: "m-extend",
          app: APP,
          name: "m-extend",
          region: "local",
          instanceId: "i1",
          configJson,
          skipLaunch: false,
          hostId: HOST,
        },
        { commandId: "m-extend-create" },
      );
      await handler.handle(
        id,
        {
          type: "RecordStarted",
          hostId: HOST,
          pid: 1,
          privateIp: "",
          privateIpv6: "",
          port: 1,
          startTime: 1,
          adopted: false,
        },
        { commandId: "m-extend-started" },
      );
      const at = await disks.mount(live);
      await writeFile(join(at, "fill"), Buffer.alloc(24 * 2 ** 20, 1));
      await waitFor("the extend request", () => asked[0]);
      expect(asked[0]).toEqual({ app: APP, volume_id: live, size_gb: 2 });
    } finally {
      sub.unsubscribe();
      await disks.unmount(live);
    }
  });

  it("refuses bad requests, a mounted volume's delete and a missing snapshot, naming what is wrong", async () => {
    expect(await refusal("create", { volume_id: "../../etc", app: APP, size_gb: 1 })).toMatch(
      /^invalid_argument: volume_id: a volume id/,
    );
    expect(await refusal("create", { volume_id: made, app: APP, size_gb: 0 })).toMatch(
      /^invalid_argument: size_gb/,
    );
    expect(
      await refusal("create", {
        volume_id: made,
        app: APP,
        size_gb: 1,
        snapshot: { volume_id: live, snapshot_id: "vs_00000000000000ff" },
      }),
    ).toMatch(/^not_found: snapshot vs_00000000000000ff of volume/);
    expect(disks.exists(made)).toBe(false);
    await disks.mount(live);
    expect(await refusal("delete", { volume_id: live })).toMatch(
      /^conflict: volume .* is mounted on this host/,
    );
    expect(await refusal("extend", { volume_id: live, size_gb: 500_000 })).toMatch(/^invalid_argument/);
  });
});
