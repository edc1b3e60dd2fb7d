import { mkdir, readdir, rm, stat, statfs } from "node:fs/promises";
import { join } from "node:path";
import { MAX_VOLUME_SIZE_GB, type Volume } from "@hangar/domain";
import type { EventStore } from "@hangar/eventstore";
import {
  type MachinesView,
  sendCommand,
  subjects,
  type VolumeExtendRequest,
  type VolumeStat,
  VolumesView,
} from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Registry } from "prom-client";
import { parseMachineConfig, type VolumeMountConfig } from "../run-spec.js";
import { serveVolumeCommands } from "./commands.js";
import { GIB, loopDevices, type VolumeDisks } from "./disk.js";
import { VolumeMetrics } from "./metrics.js";
import { SnapshotStore } from "./snapshots.js";

/**
 * The size a mounted volume should grow to now, or null: when its use crossed the mount's
 * threshold, by add_size_gb, capped at size_gb_limit (Fly's 500 GB when unset).
 */
export function autoExtendTarget(mount: VolumeMountConfig, sizeGb: number, stat: VolumeStat): number | null {
  const threshold = mount.extend_threshold_percent;
  const add = mount.add_size_gb;
  if (!threshold || !add || stat.blocks === 0) return null;
  const usedPercent = ((stat.blocks - stat.blocks_avail) / stat.blocks) * 100;
  if (usedPercent < threshold) return null;
  const target = Math.min(sizeGb + add, mount.size_gb_limit ?? MAX_VOLUME_SIZE_GB);
  return target > sizeGb ? target : null;
}

/**
 * Which of the disks found on this host no event accounts for any more: volumes the VOLUMES stream
 * says are destroyed or failed to create, and volumes it never placed here.
 */
export function staleVolumes(local: readonly string[], onHost: readonly Volume[]): string[] {
  const live = new Set(
    onHost.filter((v) => v.state !== "destroyed" && v.state !== "failed").map((v) => v.id),
  );
  return local.filter((id) => !live.has(id));
}

/**
 * The room for volumes a host offers by default: the free space of its volumes folder plus what its
 * volumes' images hold already (placement reserves those), whole GiB.
 */
export async function defaultDiskGb(disks: VolumeDisks): Promise<number> {
  await mkdir(disks.opts.dir, { recursive: true, mode: 0o700 });
  const fs = await statfs(disks.opts.dir);
  let held = 0;
  for (const id of await disks.list()) held += (await stat(disks.imagePath(id)).catch(() => null))?.size ?? 0;
  return Math.floor((fs.bavail * fs.bsize + held) / GIB);
}

export interface HostVolumesOptions {
  nc: NatsConnection;
  store: EventStore;
  hostId: string;
  disks: VolumeDisks;
  snapshots: SnapshotStore;
  logger: Logger;
  registry?: Registry;
  /** How often mounted volumes are checked against their mounts' auto-extend thresholds. */
  extendIntervalMs: number;
}

/**
 * The volumes of one host: serves the volume service's disk commands, removes at start what no event
 * accounts for (a crash between a disk and its event, a destroy while the agent was down), and asks
 * the volume service to grow mounted volumes whose use crossed their mount's threshold.
 */
export class HostVolumes {
  readonly #view: VolumesView;
  readonly #metrics: VolumeMetrics;
  readonly #subs: Subscription[] = [];
  /** Volumes an auto-extend was asked for and not yet answered. */
  readonly #extending = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  #unsubscribe: (() => void) | null = null;

  constructor(private readonly opts: HostVolumesOptions) {
    this.#view = VolumesView.create(opts.store);
    this.#metrics = new VolumeMetrics(opts.disks, opts.registry);
  }

  /** Opens the host's volumes: its disks, and the snapshots bucket (created when missing). */
  static async open(o: Omit<HostVolumesOptions, "snapshots"> & { replicas: number }): Promise<HostVolumes> {
    const snapshots = await SnapshotStore.open(o.nc, { replicas: o.replicas });
    return new HostVolumes({ ...o, snapshots });
  }

  get disks(): VolumeDisks {
    return this.opts.disks;
  }

  /** Reads the VOLUMES stream, removes stale disks, then serves commands and watches `machines` for auto-extend. */
  async start(machines: MachinesView): Promise<void> {
    const { opts } = this;
    if (!opts.disks.onlineResize)
      opts.logger.warn(
        "this host agent lacks CAP_SYS_RESOURCE, which ext4 needs to grow a mounted filesystem: an extend of a mounted volume answers needs_restart and applies at its machine's next start",
      );
    await this.#view.follow();
    await this.#view.caughtUp;
    await this.reconcile();
    // From now on, a volume that ends (destroyed, or its create failed) loses its disk here at once,
    // even when the volume service that recorded it did not get to ask (it was killed meanwhile).
    // A volume detached from its machine (destroyed meanwhile) is unmounted, so nothing keeps it
    // busy for its next machine or its destroy.
    this.#unsubscribe = this.#view.subscribe(({ previous, state }) => {
      if (state?.host_id !== opts.hostId) return;
      if (state.state === "destroyed" || state.state === "failed")
        void this.#removeEnded(state.id, state.state);
      else if (previous?.attached_machine_id && !state.attached_machine_id)
        void this.#unmountDetached(state.id);
    });
    this.#subs.push(
      ...serveVolumeCommands({
        nc: opts.nc,
        hostId: opts.hostId,
        disks: opts.disks,
        snapshots: opts.snapshots,
        metrics: this.#metrics,
        logger: opts.logger,
      }),
    );
    this.#timer = setInterval(() => void this.#autoExtend(machines), opts.extendIntervalMs);
    this.#timer.unref();
  }

  /**
   * Removes the disks, mounts and loop devices of volumes no event accounts for on this host, and
   * the temp files of creates and snapshots a crash cut short; unmounts volumes no machine holds
   * (detached while the agent was down); logs each. Nothing else is touched.
   */
  async reconcile(): Promise<void> {
    const { disks, logger, hostId } = this.opts;
    for (const id of staleVolumes(await disks.list(), this.#view.onHost(hostId))) {
      const volume = [...this.#view.all()].find((v) => v.id === id);
      await disks.unmount(id);
      await disks.remove(id);
      logger.warn(
        { volume_id: id, state: volume?.state ?? "unknown" },
        volume
          ? `removed the disk of volume ${id} (${volume.state})`
          : `removed the disk of volume ${id}: no event places it on this host`,
      );
    }
    for (const volume of this.#view.onHost(hostId))
      if (volume.state !== "destroyed" && !volume.attached_machine_id) await this.#unmountDetached(volume.id);
    const dir = disks.opts.dir;
    const temps = (await readdir(dir).catch(() => [] as string[])).filter(
      (name) => name.startsWith(".") && name.includes(".tmp-"),
    );
    // A loop device on a temp file can only be a leftover too.
    const devices = temps.length > 0 ? await loopDevices() : [];
    for (const name of temps) {
      for (const d of devices) if (d.file === join(dir, name)) await disks.detachDevice(d.name);
      await rm(join(dir, name), { force: true });
      logger.warn({ file: name }, "removed a volume temp file an interrupted create or snapshot left");
    }
  }

  /** Unmounts a volume no machine holds (detached), if it is mounted. */
  async #unmountDetached(id: string): Promise<void> {
    const { disks, logger } = this.opts;
    try {
      const unmounted = await disks.serial(id, async () => {
        if (!disks.isMounted(id)) return false;
        await disks.unmount(id);
        return true;
      });
      if (unmounted) logger.info({ volume_id: id }, `unmounted volume ${id}: no machine holds it`);
    } catch (err) {
      logger.warn({ err, volume_id: id }, "could not unmount a detached volume");
    }
  }

  /** Removes the disk of a volume that ended, unless it is gone already or (still) mounted. */
  async #removeEnded(id: string, state: string): Promise<void> {
    const { disks, logger } = this.opts;
    try {
      const removed = await disks.serial(id, async () => {
        if (!disks.exists(id) || disks.isMounted(id)) return false;
        await disks.remove(id);
        return true;
      });
      if (removed) logger.info({ volume_id: id, state }, `removed the disk of volume ${id} (${state})`);
    } catch (err) {
      logger.warn({ err, volume_id: id }, "could not remove the disk of an ended volume");
    }
  }

  /** Asks the volume service to grow each mounted volume whose use crossed its mount's threshold. */
  async #autoExtend(machines: MachinesView): Promise<void> {
    const { disks, hostId, nc, logger } = this.opts;
    for (const { state: m } of machines.onHost(hostId)) {
      if (m.status !== "started") continue;
      for (const mount of parseMachineConfig(m.configJson).mounts) {
        if (!mount.extend_threshold_percent || !mount.add_size_gb) continue;
        const volume = this.#view.volume(m.app, mount.volume);
        if (volume?.state !== "created" || this.#extending.has(volume.id) || !disks.isMounted(volume.id))
          continue;
        // statfs first (cheap); the superblock read only for a volume past its threshold.
        const stat = await disks.stat(volume.id).catch(() => null);
        const target = stat ? autoExtendTarget(mount, volume.size_gb, stat) : null;
        if (target === null) continue;
        // Grown already, waiting for its next mount: asking again would grow it past what it needs.
        if (await disks.growPending(volume.id).catch(() => true)) continue;
        this.#extending.add(volume.id);
        logger.info(
          { volume_id: volume.id, size_gb: volume.size_gb, to_gb: target },
          "auto-extending a volume",
        );
        void sendCommand<VolumeExtendRequest, unknown>(nc, subjects.volumeAutoExtend(hostId), {
          app: m.app,
          volume_id: volume.id,
          size_gb: target,
        })
          .catch((err: unknown) => logger.warn({ err, volume_id: volume.id }, "auto-extend failed"))
          .finally(() => this.#extending.delete(volume.id));
      }
    }
  }

  /** Stops serving and watching; mounted volumes stay mounted for their machines. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#unsubscribe?.();
    for (const s of this.#subs.splice(0)) s.unsubscribe();
    await this.#view.stop();
  }
}
