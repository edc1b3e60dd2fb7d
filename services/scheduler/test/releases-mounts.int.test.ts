// The release orchestrator on an app with [mounts], on a real nats-server: a first deploy puts each new
// machine on a volume the volume service creates (keyed by the machine) and attaches before the
// machine is placed on its host; a later release updates the same machines in place on the same
// volumes; a release whose machines never pass their checks is rolled back in place. The volume
// service's create, attach and detach are answered here over NATS (its own tests cover the disks).
import {
  machineAggregateId,
  newMachineId,
  newVolumeId,
  type ReleaseCommand,
  type ReleaseEvent,
  type ReleasesState,
  releaseDecider,
  releasesStream,
  volumeAggregateId,
  volumeDecider,
  volumesStream,
} from "@hangar/domain";
import { CommandHandler } from "@hangar/eventstore";
import {
  AggregateView,
  serveCommands,
  subjects,
  type VolumeAttachRequest,
  type VolumeCreateRequest,
} from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startScheduler } from "../src/mod.js";
import { Platform, waitFor } from "./harness.js";

const logger = createLogger("scheduler-test", { level: process.env.SCHED_LOG ?? "silent" });
const APP = "notes";
let platform: Platform;
let releases: AggregateView<ReleasesState, ReleaseCommand, ReleaseEvent>;
let stopScheduler: () => Promise<void>;
const created: VolumeCreateRequest[] = [];
const attached: VolumeAttachRequest[] = [];
const detached: VolumeAttachRequest[] = [];

beforeAll(async () => {
  platform = await Platform.start();
  releases = await AggregateView.start(platform.store, releasesStream, releaseDecider);
  serveCommands<VolumeCreateRequest, unknown>(platform.nc, subjects.volume.create, "volume", async (req) => {
    // Asked again with the same command_id, the same volume (as the volume service answers).
    let i = created.findIndex((c) => c.command_id === req.command_id);
    if (i < 0) i = created.push(req) - 1;
    return {
      id: `vol_${String(i).padStart(16, "0")}`,
      name: req.name,
      region: req.region,
      host_id: "host-v",
      size_gb: req.size_gb,
      state: "created",
      attached_machine_id: null,
      seq: 1,
    };
  });
  serveCommands<VolumeAttachRequest, unknown>(platform.nc, subjects.volume.attach, "volume", async (req) => {
    attached.push(req);
    return { id: req.volume_id, seq: 1 };
  });
  serveCommands<VolumeAttachRequest, unknown>(platform.nc, subjects.volume.detach, "volume", async (req) => {
    detached.push(req);
    return { id: req.volume_id, seq: 1 };
  });
  await platform.createApp(APP);
  const nc = await connect({ servers: platform.server.url });
  const s = await startScheduler({ nc, logger, passIntervalMs: 100, warmupMs: 0 });
  stopScheduler = async () => {
    await s.stop();
    await nc.close();
  };
});

afterAll(async () => {
  await stopScheduler?.();
  await releases?.stop();
  await platform?.stop();
});

const appConfig = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    app: APP,
    primary_region: "local",
    mounts: [{ source: "data", destination: "/data", initial_size: "3gb" }],
    ...extra,
  });

async function release(id: string, configJson: string, waitTimeoutMs = 60_000, app = APP): Promise<number> {
  const res = await new CommandHandler(platform.store, releasesStream, releaseDecider).handle(
    app,
    {
      type: "CreateRelease",
      releaseId: id,
      imageRef: `registry.local/${app}:${id}`,
      configJson,
      strategy: "rolling",
      waitTimeoutMs,
      orchestrated: true,
    },
    { commandId: `create-${id}` },
  );
  const made = res.events[0];
  return made?.type === "ReleaseCreated" ? (made.data.version ?? 0) : 0;
}

const ended = (version: number, app = APP) =>
  waitFor(
    `release v${version} to end`,
    () => {
      const r = releases.get(app)?.releases.find((x) => x.version === version);
      return r && (r.status === "succeeded" || r.status === "failed") ? r : undefined;
    },
    30_000,
  );

/** The app's live machines: id, release, volume, status. */
function machines(app = APP) {
  return platform
    .machinesOf(app)
    .filter((m) => m.status !== "destroyed")
    .map((m) => {
      const c = JSON.parse(m.configJson) as {
        metadata: Record<string, string>;
        mounts: { volume: string }[];
      };
      return {
        id: m.machineId,
        release: c.metadata.hangar_release,
        volume: c.mounts[0]?.volume,
        host: m.hostId,
      };
    })
    .sort((a, b) => a.id.localeCompare(b.id));
}

/** A created volume "data" on host-v, attached (in VOLUMES) to `machineId`, as the volume service records one. */
async function attachedVolume(app: string, volumeId: string, commandId: string, machineId: string) {
  const volumes = new CommandHandler(platform.store, volumesStream, volumeDecider);
  const aggregate = volumeAggregateId(app, volumeId);
  const spec = { volumeId, app, org: "personal", name: "data", region: "local", hostId: "host-v" };
  await volumes.handle(
    aggregate,
    {
      type: "CreateVolume",
      ...spec,
      sizeGb: 1,
      snapshotRetention: 5,
      autoBackupEnabled: true,
      commandId,
      at: new Date().toISOString(),
    },
    { commandId: `${volumeId}-create` },
  );
  await volumes.handle(aggregate, { type: "MarkCreated" }, { commandId: `${volumeId}-created` });
  await volumes.handle(aggregate, { type: "AttachVolume", machineId }, { commandId: `${volumeId}-attach` });
}

describe("release orchestrator, an app with [mounts]", () => {
  let first: ReturnType<typeof machines> = [];

  it("puts a first deploy's machine on a new volume of the mount's size, attached first and placed on its host", async () => {
    const v1 = await release("r1", appConfig());
    expect(await ended(v1)).toMatchObject({ status: "succeeded" });
    first = machines();
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ release: String(v1), volume: "vol_0000000000000000", host: "host-v" });
    expect(created).toEqual([
      expect.objectContaining({ app: APP, name: "data", size_gb: 3, region: "local", org: "personal" }),
    ]);
    expect(attached).toEqual([{ app: APP, volume_id: "vol_0000000000000000", machine_id: first[0]?.id }]);
    expect(platform.errors).toEqual([]);
  });

  it("updates the machine in place on the same volume for the next release: no machine or volume made", async () => {
    const v2 = await release("r2", appConfig({ env: { RELEASE: "2" } }));
    expect(await ended(v2)).toMatchObject({ status: "succeeded", machineIds: [first[0]?.id] });
    expect(machines()).toEqual([{ ...first[0], release: String(v2) }]);
    expect(created).toHaveLength(1);
    expect(attached).toHaveLength(1);
  });

  it("rolls a release whose machine never passes its checks back in place, on the same volume", async () => {
    const before = machines();
    const v3 = await release(
      "r3",
      appConfig({ checks: { alive: { type: "tcp", port: 9999, interval: "1s", timeout: "1s" } } }),
      1_500,
    );
    const r = await ended(v3);
    expect(r).toMatchObject({ status: "failed", rolledBackTo: Number(before[0]?.release) });
    expect(r.reason).toMatch(/has reported 0 of its 1 checks after 2 s/);
    await waitFor("the machine back on the release before", () => {
      const [m] = machines();
      return m && m.release === before[0]?.release && platform.machine(APP, m.id)?.status === "started"
        ? true
        : undefined;
    });
    expect(machines()).toEqual(before);
    expect(created).toHaveLength(1);
  });

  it("a release that supersedes one half-way updates every machine on a volume, and destroys none", async () => {
    const app = "notes-two";
    await platform.createApp(app);
    // Two machines on their volumes, made before any release (as `machine run` or flyctl would).
    for (const [id, volume] of [
      ["a0000000000001", "vol_a000000000000001"],
      ["a0000000000002", "vol_a000000000000002"],
    ] as const)
      await platform.startedMachine(
        app,
        id,
        JSON.stringify({
          image: `registry.local/${app}:v0`,
          metadata: { fly_process_group: "app" },
          mounts: [{ volume, name: "data", path: "/data" }],
        }),
      );
    const config = (extra: Record<string, unknown> = {}) =>
      JSON.stringify({ app, mounts: [{ source: "data", destination: "/data" }], ...extra });
    // v1's machines never report their check: it updates one machine (its batch) and waits.
    const v1 = await release(
      "two-r1",
      config({ checks: { alive: { type: "tcp", port: 9999, interval: "1s", timeout: "1s" } } }),
      60_000,
      app,
    );
    await waitFor("v1 to update one machine", () =>
      machines(app).some((m) => m.release === String(v1)) ? true : undefined,
    );
    const v2 = await release("two-r2", config({ env: { V: "2" } }), 60_000, app);
    expect(await ended(v1, app)).toMatchObject({ status: "failed", reason: `superseded by v${v2}` });
    expect(await ended(v2, app)).toMatchObject({ status: "succeeded" });
    expect(machines(app)).toEqual([
      { id: "a0000000000001", release: String(v2), volume: "vol_a000000000000001", host: "host-0" },
      { id: "a0000000000002", release: String(v2), volume: "vol_a000000000000002", host: "host-0" },
    ]);
  });

  it("detaches a volume left attached to a machine an ended release never created, when the next release starts", async () => {
    // As a step cut off between its attach and its create leaves it: attached (in VOLUMES) to the
    // id of a slot of release r1, with no such machine.
    const stranded = newMachineId("r1/app/3");
    const id = "vol_5714a0ded0000001";
    await attachedVolume(APP, id, "stranded", stranded);
    const v4 = await release("r4", appConfig({ env: { RELEASE: "4" } }));
    expect(await ended(v4)).toMatchObject({ status: "succeeded" });
    expect(detached).toContainEqual({ app: APP, volume_id: id, machine_id: stranded });
    // The machines' own volumes stay attached.
    expect(detached.filter((d) => d.volume_id !== id)).toEqual([]);
  });

  it("makes its machine a volume of its own when another machine took the one its step made before", async () => {
    const app = "notes-three";
    await platform.createApp(app);
    // The volume a cut-off step made for the first slot (keyed by that machine), since taken by another.
    const slot0 = newMachineId("three-r1/app/0");
    const taken = newVolumeId(`${app}/release-volume-${slot0}`);
    await attachedVolume(app, taken, `release-volume-${slot0}`, "someoneelse01");
    const v1 = await release(
      "three-r1",
      JSON.stringify({ app, mounts: [{ source: "data", destination: "/data" }] }),
      60_000,
      app,
    );
    expect(await ended(v1, app)).toMatchObject({ status: "succeeded" });
    expect(created.filter((c) => c.app === app).map((c) => c.command_id)).toEqual([
      `release-volume-${slot0}-1`,
    ]);
    expect(attached.filter((a) => a.app === app).map((a) => a.machine_id)).toEqual([slot0]);
  });

  it("fails a release whose machine cannot be updated in place within its wait (a user holds its lease), and leaves it as it was", async () => {
    const before = machines();
    const [m] = before;
    if (!m) throw new Error("no machine");
    await platform.machinesHandler.handle(
      machineAggregateId(APP, m.id),
      {
        type: "AcquireLease",
        nonce: "user-nonce",
        ttlS: 60,
        owner: "someone@example.com",
        description: "maintenance",
        nowMs: Date.now(),
      },
      { commandId: "lease-for-test" },
    );
    const v = await release("r6", appConfig({ env: { RELEASE: "6" } }), 1_500);
    const r = await ended(v);
    expect(r).toMatchObject({ status: "failed" });
    expect(r.reason).toMatch(new RegExp(`machine ${m.id} could not be updated in place within 2 s: .*lease`));
    expect(machines()).toEqual(before);
    await platform.machinesHandler.handle(
      machineAggregateId(APP, m.id),
      { type: "ReleaseLease", nonce: "user-nonce", nowMs: Date.now() },
      { commandId: "lease-release-for-test" },
    );
  });
});
