import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  appsStream,
  hostDecider,
  hostsStream,
  machineAggregateId,
  machineDecider,
  machinesStream,
  VOLUME_SNAPSHOTS_BUCKET,
  type Volume,
  volumeAggregateId,
  volumesStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream } from "@hangar/eventstore";
import { openObjectBucket } from "@hangar/oci";
import {
  CommandError,
  sendCommand,
  subjects,
  type VolumeAttachRequest,
  type VolumeCommandReply,
  type VolumeCreateRequest,
  type VolumeRef,
  type VolumeReply,
  VolumesView,
} from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import type { ObjectStore } from "@nats-io/obj";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The real placement and the real host agent's volume commands (ext4 images in a temp folder): the
// service is tested against the parts it talks to, not against copies of them.
import { serveVolumeCommands } from "../../host-agent/src/volumes/commands.js";
import { VolumeDisks } from "../../host-agent/src/volumes/disk.js";
import { VolumeMetrics } from "../../host-agent/src/volumes/metrics.js";
import { SnapshotStore } from "../../host-agent/src/volumes/snapshots.js";
import { Placement } from "../../placement/src/placement.js";
import { VolumeService } from "../src/volume-service.js";

// A nats-server of its own: the service uses the platform's fixed stream and bucket names.
let server: NatsServer;
let nc: NatsConnection;
let store: EventStore;
let view: VolumesView;
let bucket: ObjectStore;
let placement: Placement;
let root = "";
let disks: VolumeDisks;
let hostSubs: Subscription[] = [];
/** Every service started, with its own connection: a crash is that connection closed mid-command. */
const services: Array<{ svc: VolumeService; nc: NatsConnection }> = [];
const logger = createLogger("volume-test", { level: "silent" });
const HOST = "h1";

async function startService(): Promise<VolumeService> {
  const own = await connect({ servers: server.url });
  const svc = await VolumeService.start({
    nc: own,
    store: await EventStore.connect(own),
    logger,
    snapshotIntervalMs: 3_600_000,
    hostTimeoutMs: 30_000,
    snapshotTimeoutMs: 30_000,
    retryIntervalMs: 3_600_000,
  });
  services.push({ svc, nc: own });
  return svc;
}

/** Kills a service as kill -9 would, as far as NATS and the stream can tell: its connection just ends. */
async function crash(svc: VolumeService): Promise<void> {
  const i = services.findIndex((s) => s.svc === svc);
  const [entry] = services.splice(i, 1);
  await entry?.nc.close();
}

async function startHost(): Promise<void> {
  const hostNc = await connect({ servers: server.url });
  hostSubs = serveVolumeCommands({
    nc: hostNc,
    hostId: HOST,
    disks,
    snapshots: await SnapshotStore.open(hostNc),
    metrics: new VolumeMetrics(disks),
    logger,
  });
}

function stopHost(): void {
  for (const s of hostSubs) s.unsubscribe();
  hostSubs = [];
}

/**
 * The host side's contract as a host that took a request and never answered (it hangs, or died
 * with it): a plain subscriber that replies nothing, so the request is in flight when the service dies.
 */
function silentHost(op: string): Subscription {
  return nc.subscribe(subjects.hostCommand(HOST, `volume.${op}`), { callback: () => undefined });
}

const ask = <Q, R>(subject: string, req: Q, timeoutMs = 30_000) =>
  sendCommand<Q, R>(nc, subject, req, timeoutMs);
/** How long a request that the service dies with waits for its answer before it is given up on. */
const PENDING_MS = 1_500;
const create = (req: Partial<VolumeCreateRequest> & { command_id: string }, timeoutMs?: number) =>
  ask<VolumeCreateRequest, Volume>(
    subjects.volume.create,
    {
      app: "app1",
      org: "org1",
      name: "data",
      region: "local",
      size_gb: 1,
      ...req,
    },
    timeoutMs,
  );
const refusal = (p: Promise<unknown>): Promise<CommandError> =>
  p.then(
    () => new CommandError("not refused", "internal"),
    (e: unknown) => e as CommandError,
  );

async function until<T>(what: string, get: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The last sequences of VOLUMES and HOSTS: unchanged when a refused command recorded and reserved nothing. */
async function lastSeqs(): Promise<{ volumes: number; hosts: number }> {
  const [volumes, hosts] = await Promise.all(
    [volumesStream.name, hostsStream.name].map(
      async (name) => (await store.jsm.streams.info(name)).state.last_seq,
    ),
  );
  return { volumes: volumes ?? 0, hosts: hosts ?? 0 };
}

/** The image files in the volumes folder, by volume id. */
async function diskFiles(): Promise<string[]> {
  const names = existsSync(disks.opts.dir) ? await readdir(disks.opts.dir) : [];
  return names.filter((n) => n.endsWith(".ext4")).map((n) => n.replace(/\.ext4$/, ""));
}

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  store = await EventStore.connect(nc);
  for (const s of [hostsStream, machinesStream, volumesStream, appsStream]) await ensureStream(store.jsm, s);
  bucket = await openObjectBucket(nc, VOLUME_SNAPSHOTS_BUCKET);
  root = await mkdtemp(join(tmpdir(), "hangar-volume-service-"));
  disks = new VolumeDisks({
    dir: join(root, "volumes"),
    mountsDir: join(root, "mounts"),
    freezeTimeoutMs: 10_000,
  });
  await new CommandHandler(store, hostsStream, hostDecider).handle(
    HOST,
    {
      type: "RegisterHost",
      hostId: HOST,
      region: "local",
      cpus: 4,
      memoryMb: 4096,
      address: "127.0.0.1",
      underlayIp: "",
      diskGb: 20,
    },
    { commandId: "register-h1" },
  );
  placement = await Placement.start({ nc, store, logger, heartbeatTimeoutMs: 3_600_000 });
  view = await VolumesView.start(store);
  await startHost();
  await startService();
});

afterAll(async () => {
  for (const { svc, nc: own } of services.splice(0)) {
    await svc.stop();
    await own.close();
  }
  stopHost();
  await view?.stop();
  await placement?.stop();
  for (const id of await diskFiles().catch(() => [])) await disks.remove(id);
  await nc?.drain();
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

describe("volume service", () => {
  let vol: Volume;

  it("creates a volume: placed on a host, recorded, its disk made, then created", async () => {
    vol = await create({ command_id: "c-1" });
    expect(vol).toMatchObject({ app: "app1", name: "data", state: "created", host_id: HOST, size_gb: 1 });
    expect(vol.id).toMatch(/^vol_[0-9a-f]{16}$/);
    expect(await diskFiles()).toEqual([vol.id]);
    // The same create asked again: the same volume, nothing more made.
    expect((await create({ command_id: "c-1" })).id).toBe(vol.id);
    expect(await diskFiles()).toEqual([vol.id]);
  });

  it("refuses a bad create before anything is placed or made", async () => {
    expect((await refusal(create({ command_id: "c-bad", name: "Bad-Name" }))).code).toBe("invalid_argument");
    expect((await refusal(create({ command_id: "c-big", size_gb: 501 }))).code).toBe("invalid_argument");
    const full = await refusal(create({ command_id: "c-full", size_gb: 100 }));
    expect(full.code).toBe("insufficient_capacity");
    expect(full.message).toMatch(/no host in region local has 100 GB of volume disk free/);
    expect((await refusal(create({ command_id: "c-snap", snapshot_id: "vs_0000000000000000" }))).code).toBe(
      "not_found",
    );
    expect(await diskFiles()).toEqual([vol.id]);
  });

  it("attaches one machine at a time and refuses to destroy an attached volume", async () => {
    const attach = (machine_id: string) =>
      ask<VolumeAttachRequest, VolumeCommandReply<Volume>>(subjects.volume.attach, {
        app: "app1",
        volume_id: vol.id,
        machine_id,
      });
    const attached = await attach("m1");
    expect(attached.attached_machine_id).toBe("m1");
    // The answer has the volume's sequence (the attach's), for the asker to read its own write.
    const volumeSeq = () => store.lastSequence(volumesStream, volumeAggregateId("app1", vol.id));
    expect(attached.seq).toBe(await volumeSeq());
    // Asked again: nothing appended, and the same sequence.
    const again = await attach("m1");
    expect(again.attached_machine_id).toBe("m1");
    expect(again.seq).toBe(attached.seq);
    const second = await refusal(attach("m2"));
    expect(second.code).toBe("conflict");
    expect(second.message).toBe(`volume ${vol.id} is attached to machine m1`);
    const destroy = await refusal(
      ask<VolumeRef, Volume>(subjects.volume.destroy, { app: "app1", volume_id: vol.id }),
    );
    expect(destroy.code).toBe("conflict");
    expect(destroy.message).toBe(`volume ${vol.id} is attached to machine m1; destroy the machine first`);
    // Another app's name for the same volume id finds nothing.
    const other = await refusal(
      ask<VolumeAttachRequest, Volume>(subjects.volume.attach, {
        app: "app2",
        volume_id: vol.id,
        machine_id: "m9",
      }),
    );
    expect(other.code).toBe("not_found");
  });

  it("detaches the volume of a machine the MACHINES stream says was destroyed", async () => {
    const machines = new CommandHandler(store, machinesStream, machineDecider);
    const id = machineAggregateId("app1", "m1");
    const meta = (c: string) => ({ commandId: `${c}-m1` });
    await machines.handle(
      id,
      {
        type: "CreateMachine",
        machineId: "m1",
        app: "app1",
        name: "m1",
        region: "local",
        instanceId: "i1",
        configJson: "{}",
        skipLaunch: true,
        hostId: HOST,
      },
      meta("create"),
    );
    await machines.handle(id, { type: "DestroyMachine", force: true, nowMs: Date.now() }, meta("destroy"));
    await machines.handle(id, { type: "RecordDestroyed" }, meta("destroyed"));
    await until("the detach", () => view.volume("app1", vol.id)?.attached_machine_id === null);
  });

  it("takes a scheduled snapshot once per interval, records its failure, and prunes it past its retention", async () => {
    const svc = services[0]?.svc as VolumeService;
    // Its host is away: the snapshot is recorded failed at once (a stored one is in the fork test below).
    stopHost();
    await svc.scheduledPass();
    const snap = await until("the snapshot in the view", () =>
      view.volume("app1", vol.id)?.snapshots.find((s) => s.state !== "creating"),
    );
    expect(snap).toMatchObject({ state: "failed", type: "scheduled", retention_days: 5 });
    expect(snap.error).toMatch(/no service answers cmd.host.h1.volume.snapshot/);
    // The pass again within the same interval: the same snapshot id, so no second one.
    await svc.scheduledPass();
    expect(view.volume("app1", vol.id)?.snapshots).toHaveLength(1);
    await startHost();
    expect(await svc.prune(Date.now() + 6 * 86_400_000)).toBe(1);
    await until("the prune in the view", () => view.volume("app1", vol.id)?.snapshots.length === 0);
    expect(await bucket.info(`${vol.id}/${snap.id}`)).toBeNull();
  });

  it("extends, only to a larger size", async () => {
    const extend = (size_gb: number) =>
      ask<{ app: string; volume_id: string; size_gb: number }, VolumeReply>(subjects.volume.extend, {
        app: "app1",
        volume_id: vol.id,
        size_gb,
      });
    expect((await refusal(extend(1))).code).toBe("invalid_argument");
    const grown = await extend(2);
    expect(grown).toMatchObject({ state: "created", size_gb: 2, needs_restart: false });
    expect((await disks.stat(vol.id)).size_gb).toBe(2);
  });

  it("auto-extends only a volume attached on the asking host's subject: another host's is refused, nothing recorded", async () => {
    const autoExtend = (hostId: string, size_gb: number) =>
      ask<{ app: string; volume_id: string; size_gb: number }, VolumeReply>(
        subjects.volumeAutoExtend(hostId),
        {
          app: "app1",
          volume_id: vol.id,
          size_gb,
        },
      );
    const before = await lastSeqs();
    // Another host's agent (a stolen credential may publish its own host's subject only).
    const otherHost = await refusal(autoExtend("h2", 3));
    expect(otherHost.code).toBe("not_found");
    expect(otherHost.message).toBe(`volume ${vol.id} not found on host h2`);
    // Its own host, but the volume is attached to no machine.
    expect((await refusal(autoExtend(HOST, 3))).code).toBe("failed_precondition");
    expect(await lastSeqs()).toEqual(before);
    expect(view.volume("app1", vol.id)).toMatchObject({ size_gb: 2, state: "created" });
    expect((await disks.stat(vol.id)).size_gb).toBe(2);
    // Attached to a machine: the host's own auto-extend grows it, and another host's still may not.
    const attachReq = { app: "app1", volume_id: vol.id, machine_id: "m-auto" };
    await ask<VolumeAttachRequest, Volume>(subjects.volume.attach, attachReq);
    const attached = await lastSeqs();
    expect((await refusal(autoExtend("h2", 3))).code).toBe("not_found");
    expect(await lastSeqs()).toEqual(attached);
    expect(await autoExtend(HOST, 3)).toMatchObject({ state: "created", size_gb: 3 });
    expect((await disks.stat(vol.id)).size_gb).toBe(3);
    await ask<VolumeAttachRequest, Volume>(subjects.volume.detach, attachReq);
  });

  it("refuses commands with missing or mistyped fields with invalid_argument, recording and reserving nothing", async () => {
    const before = await lastSeqs();
    const id = vol.id;
    const bad: Array<[string, unknown]> = [
      [subjects.volume.update, { app: "app1" }],
      [subjects.volume.update, { volume_id: id }],
      [subjects.volume.update, { app: "app1", volume_id: id, snapshot_retention: "7" }],
      [subjects.volume.update, { app: "app1", volume_id: id, snapshot_retention: 0 }],
      [subjects.volume.update, { app: "app1", volume_id: id, auto_backup_enabled: "yes" }],
      [subjects.volume.extend, { app: "app1", volume_id: id }],
      [subjects.volume.extend, { app: "app1", volume_id: id, size_gb: "3" }],
      [subjects.volume.extend, { app: "app1", size_gb: 3 }],
      [subjects.volume.extend, { volume_id: id, size_gb: 3 }],
      [subjects.volume.extend, { app: "app1", volume_id: id, size_gb: 2.5 }],
      [subjects.volume.destroy, { app: "app1" }],
      [subjects.volume.destroy, { volume_id: id }],
      [subjects.volume.destroy, { app: "app1", volume_id: "vol_short" }],
      [subjects.volume.destroy, { app: 7, volume_id: id }],
      [subjects.volume.snapshot, { app: "app1" }],
      [subjects.volume.snapshot, { app: "app1", volume_id: id, type: "weekly" }],
      [subjects.volume.attach, { app: "app1", volume_id: id }],
      [subjects.volume.detach, { app: "app1", volume_id: id }],
      [subjects.volume.detach, { app: "app1", volume_id: id, machine_id: 5 }],
      [subjects.volume.detach, { app: "app1", machine_id: "m1" }],
      [subjects.volumeAutoExtend(HOST), { app: "app1", volume_id: id, size_gb: "3" }],
    ];
    for (const [subject, req] of bad) {
      const err = await refusal(ask(subject, req));
      expect(err.code, `${subject} ${JSON.stringify(req)}: ${err.message}`).toBe("invalid_argument");
    }
    expect(await lastSeqs()).toEqual(before);
    expect(view.volume("app1", id)).toMatchObject({
      size_gb: 3,
      state: "created",
      attached_machine_id: null,
    });
    expect((await disks.stat(id)).size_gb).toBe(3);
  });

  it("destroys a detached volume: its disk deleted, its host room released", async () => {
    const gone = await ask<VolumeRef, Volume>(subjects.volume.destroy, { app: "app1", volume_id: vol.id });
    expect(gone.state).toBe("destroyed");
    expect(await diskFiles()).toEqual([]);
    // Placement frees the room when it sees the volume destroyed.
    const hosts = new CommandHandler(store, hostsStream, hostDecider, { cacheSize: 0 });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { state } = await hosts.handle(
        HOST,
        { type: "ReleaseVolume", volumeId: "none" },
        { commandId: `probe-${Date.now()}` },
      );
      if (state.status !== "absent" && state.usedDiskGb === 0) break;
      if (Date.now() > deadline) throw new Error("disk room not released");
      await sleep(50);
    }
  });
});

describe("volume service restarts (acceptance 6)", () => {
  it("a create killed half-way is finished after a restart: one volume, one disk", async () => {
    stopHost();
    const silent = silentHost("create");
    const svc = services[0]?.svc as VolumeService;
    const pending = create({ command_id: "c-kill" }, PENDING_MS).catch((e: unknown) => e);
    const creating = await until("the create recorded", () =>
      view.ofApp("app1").find((v) => v.create_command_id === "c-kill" && v.state === "creating"),
    );
    await crash(svc);
    silent.unsubscribe();
    await startHost();
    await startService();
    const made = await until("the create finished", () => {
      const v = view.volume("app1", creating.id);
      return v?.state === "created" && v;
    });
    expect(made.host_id).toBe(HOST);
    // The client that asked before the crash asks again: the same volume.
    await pending;
    expect((await create({ command_id: "c-kill" })).id).toBe(creating.id);
    expect(view.ofApp("app1").filter((v) => v.create_command_id === "c-kill")).toHaveLength(1);
    expect(await diskFiles()).toEqual([creating.id]);
  });

  /**
   * Kills the service while the host is taking a snapshot of `volumeId` (asked by `request`), then
   * starts it again, with the host back or still gone; resolves with the snapshot once it settled.
   */
  async function killDuringSnapshot(volumeId: string, request: () => Promise<unknown>, hostBack: boolean) {
    stopHost();
    const silent = silentHost("snapshot");
    const svc = services[0]?.svc as VolumeService;
    const pending = request().catch((e: unknown) => e);
    const taking = await until("the snapshot recorded", () =>
      view.volume("app1", volumeId)?.snapshots.find((s) => s.state === "creating"),
    );
    await crash(svc);
    silent.unsubscribe();
    await pending;
    if (hostBack) await startHost();
    await startService();
    return until("the snapshot settled", () => {
      const s = view.volume("app1", volumeId)?.snapshots.find((x) => x.id === taking.id);
      return s?.state !== "creating" && s;
    });
  }
  const sourceId = () => view.ofApp("app1").find((v) => v.create_command_id === "c-kill")?.id as string;

  it("a fork killed during its snapshot: the snapshot completes after a restart, and the fork asked again restores it", async () => {
    const fork = { command_id: "c-fork", source_volume_id: sourceId() };
    const done = await killDuringSnapshot(sourceId(), () => create(fork, PENDING_MS), true);
    expect(done).toMatchObject({ state: "created", type: "on_demand" });
    expect(done.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await bucket.info(`${sourceId()}/${done.id}`)).not.toBeNull();
    const forked = await create(fork);
    expect(forked).toMatchObject({
      state: "created",
      size_gb: 1,
      source_volume_id: sourceId(),
      source_snapshot_id: done.id,
    });
    // The fork asked again took no second snapshot.
    expect(view.volume("app1", sourceId())?.snapshots.map((x) => x.id)).toEqual([done.id]);
    expect((await diskFiles()).sort()).toEqual([sourceId(), forked.id].sort());
    await ask(subjects.volume.destroy, { app: "app1", volume_id: forked.id });
  });

  it("a snapshot killed while its host is gone is recorded failed, with no object left", async () => {
    const request = () => ask(subjects.volume.snapshot, { app: "app1", volume_id: sourceId() }, PENDING_MS);
    const failed = await killDuringSnapshot(sourceId(), request, false);
    expect(failed.state).toBe("failed");
    expect(failed.error).toMatch(/host h1: no service answers cmd.host.h1.volume.snapshot/);
    expect(await bucket.info(`${sourceId()}/${failed.id}`)).toBeNull();
    await startHost();
    await ask(subjects.volume.destroy, { app: "app1", volume_id: sourceId() });
    expect(await diskFiles()).toEqual([]);
  });
});
