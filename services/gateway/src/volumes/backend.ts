import { randomBytes } from "node:crypto";
import type { Volume, VolumeSnapshot } from "@hangar/domain";
import {
  type HostVolumeStatReply,
  type HostVolumeStatRequest,
  sendCommand,
  subjects,
  type VolumeAttachRequest,
  type VolumeCommandReply,
  type VolumeCreateRequest,
  type VolumeExtendRequest,
  type VolumeRef,
  type VolumeReply,
  type VolumeSnapshotRequest,
  type VolumesView,
  type VolumeUpdateRequest,
} from "@hangar/service";
import type { NatsConnection } from "@nats-io/transport-node";
import type { RequestContext } from "../http/backend.js";
import { ApiError } from "../http/errors.js";

import type {
  CreateVolumeRequest,
  ExtendVolumeView,
  UpdateVolumeRequest,
  VolumeSnapshotView,
  VolumesBackend,
  VolumeView,
} from "./api.js";
import type { MachineVolumes } from "./mounts.js";
import { toSnapshotView, toVolumeView } from "./views.js";

/** How long a host has to report its volumes' filesystems before a read answers zeros for them. */
const STAT_TIMEOUT_MS = 1_000;
/** Commands that copy or grow disk images on a host (create from a snapshot or a fork, snapshot, extend). */
const DISK_COMMAND_TIMEOUT_MS = 600_000;
/** Commands that only record something, or delete a file (update, attach, detach, destroy). */
const COMMAND_TIMEOUT_MS = 30_000;

/**
 * Fly's Volumes API over the volume service: writes are its commands (`cmd.volume.*`), reads come
 * from the gateway's VolumesView, which has folded every write before its answer is sent (read
 * your own writes). Filesystem figures come from the volumes' hosts (`volume.stat`).
 */
export class StreamVolumesBackend implements VolumesBackend, MachineVolumes {
  constructor(
    private readonly nc: NatsConnection,
    private readonly view: VolumesView,
    private readonly defaultRegion: string,
  ) {}

  /** The app's volume that is not destroyed, or a 404 that names it. */
  private found(app: string, volumeId: string): Volume {
    const v = this.view.volume(app, volumeId);
    if (!v || v.state === "destroyed")
      throw ApiError.of("not_found", `volume ${volumeId} not found in app ${app}`);
    return v;
  }

  /**
   * Sends a volume command and waits until the view has folded the volume's sequence the service
   * answered with (what the command appended, or its last message when it appended nothing).
   */
  private async command<Q extends VolumeRef | VolumeCreateRequest, R extends { id: string }>(
    subject: string,
    request: Q,
    timeoutMs = COMMAND_TIMEOUT_MS,
  ): Promise<R> {
    const reply = await sendCommand<Q, VolumeCommandReply<R>>(this.nc, subject, request, timeoutMs);
    await this.view.waitForSeq(reply.seq);
    return reply;
  }

  /** The volumes as Fly shows them, with their hosts' filesystem figures, one request per host. */
  private async views(volumes: Volume[]): Promise<VolumeView[]> {
    const byHost = new Map<string, string[]>();
    for (const v of volumes) {
      if (v.state !== "created" && v.state !== "extending") continue;
      byHost.set(v.host_id, [...(byHost.get(v.host_id) ?? []), v.id]);
    }
    const stats: HostVolumeStatReply = {};
    await Promise.all(
      [...byHost].map(async ([host, ids]) => {
        // A host that is down or slow only leaves its volumes' figures at zero: a read never fails on it.
        const reply = await sendCommand<HostVolumeStatRequest, HostVolumeStatReply>(
          this.nc,
          subjects.hostCommand(host, "volume.stat"),
          { volume_ids: ids },
          STAT_TIMEOUT_MS,
        ).catch(() => ({}));
        Object.assign(stats, reply);
      }),
    );
    return volumes.map((v) => toVolumeView(v, stats[v.id]));
  }

  private async viewOf(app: string, volumeId: string): Promise<VolumeView> {
    const [view] = await this.views([this.found(app, volumeId)]);
    return view as VolumeView;
  }

  /** The app's volumes as the view has them, destroyed ones included (MachineVolumes). */
  volumesOf(app: string): Volume[] {
    return this.view.ofApp(app);
  }

  async listVolumes(app: string): Promise<VolumeView[]> {
    return this.views(this.view.ofApp(app).filter((v) => v.state !== "destroyed"));
  }

  async createVolume(
    app: string,
    org: string,
    input: CreateVolumeRequest,
    ctx?: RequestContext,
  ): Promise<VolumeView> {
    const created = await this.command<VolumeCreateRequest, VolumeReply>(
      subjects.volume.create,
      {
        // The volume service derives the volume's id from the command id: a keyed retry (an
        // Idempotency-Key's operation id) meets the volume its first attempt made.
        command_id: `create-volume-${ctx?.operationId ?? randomBytes(8).toString("hex")}`,
        app,
        org,
        name: input.name,
        region: input.region || this.defaultRegion,
        // A restore or a fork is as large as its source unless asked for more (0: the service decides).
        size_gb: input.size_gb ?? (input.snapshot_id || input.source_volume_id ? 0 : 1),
        ...(input.snapshot_id ? { snapshot_id: input.snapshot_id } : {}),
        ...(input.source_volume_id ? { source_volume_id: input.source_volume_id } : {}),
        ...(input.snapshot_retention ? { snapshot_retention: input.snapshot_retention } : {}),
        ...(input.auto_backup_enabled != null ? { auto_backup_enabled: input.auto_backup_enabled } : {}),
        ...(input.require_unique_zone != null ? { require_unique_zone: input.require_unique_zone } : {}),
      },
      DISK_COMMAND_TIMEOUT_MS,
    );
    return this.viewOf(app, created.id);
  }

  async getVolume(app: string, volumeId: string): Promise<VolumeView> {
    return this.viewOf(app, volumeId);
  }

  async updateVolume(app: string, volumeId: string, input: UpdateVolumeRequest): Promise<VolumeView> {
    this.found(app, volumeId);
    await this.command<VolumeUpdateRequest, VolumeReply>(subjects.volume.update, {
      app,
      volume_id: volumeId,
      ...(input.snapshot_retention != null ? { snapshot_retention: input.snapshot_retention } : {}),
      ...(input.auto_backup_enabled != null ? { auto_backup_enabled: input.auto_backup_enabled } : {}),
    });
    return this.viewOf(app, volumeId);
  }

  async extendVolume(app: string, volumeId: string, sizeGb: number): Promise<ExtendVolumeView> {
    this.found(app, volumeId);
    const reply = await this.command<VolumeExtendRequest, VolumeReply>(
      subjects.volume.extend,
      { app, volume_id: volumeId, size_gb: sizeGb },
      DISK_COMMAND_TIMEOUT_MS,
    );
    // The host grows a mounted filesystem online: the machine sees the size without a restart.
    return { needs_restart: reply.needs_restart ?? false, volume: await this.viewOf(app, volumeId) };
  }

  async deleteVolume(app: string, volumeId: string): Promise<VolumeView> {
    const before = this.found(app, volumeId);
    await this.command<VolumeRef, VolumeReply>(subjects.volume.destroy, { app, volume_id: volumeId });
    return toVolumeView(this.view.volume(app, volumeId) ?? before, undefined);
  }

  async listSnapshots(app: string, volumeId: string): Promise<VolumeSnapshotView[]> {
    return this.found(app, volumeId).snapshots.map(toSnapshotView);
  }

  async createSnapshot(app: string, volumeId: string): Promise<VolumeSnapshotView> {
    this.found(app, volumeId);
    const snapshot = await this.command<VolumeSnapshotRequest, VolumeSnapshot>(
      subjects.volume.snapshot,
      { app, volume_id: volumeId, type: "on_demand" },
      DISK_COMMAND_TIMEOUT_MS,
    );
    return toSnapshotView(snapshot);
  }

  /** Attaches the app's volume to a machine (`conflict`, a 409, when another machine has it). */
  async attach(app: string, volumeId: string, machineId: string): Promise<void> {
    await this.command<VolumeAttachRequest, VolumeReply>(subjects.volume.attach, {
      app,
      volume_id: volumeId,
      machine_id: machineId,
    });
  }

  /** Detaches the app's volume from a machine; nothing when that machine does not have it. */
  async detach(app: string, volumeId: string, machineId: string): Promise<void> {
    await this.command<VolumeAttachRequest, VolumeReply>(subjects.volume.detach, {
      app,
      volume_id: volumeId,
      machine_id: machineId,
    });
  }
}
