import type { HostVolumeSnapshotReply } from "@hangar/service";
import { Gauge, Histogram, type Registry } from "prom-client";
import type { VolumeDisks } from "./disk.js";

/**
 * The host's volume metrics on the agent's /metrics: each volume's size and used bytes (read at
 * scrape time), and how long snapshots take and how long they keep a volume frozen.
 */
export class VolumeMetrics {
  readonly #snapshotSeconds: Histogram;
  readonly #freezeSeconds: Histogram;

  constructor(disks: VolumeDisks, registry?: Registry) {
    const registers = registry ? [registry] : [];
    // One scrape reads every volume once, for both gauges.
    let reading: Promise<Array<{ id: string; size: number; used: number }>> | null = null;
    const read = () => {
      reading ??= readAll(disks).finally(() => {
        reading = null;
      });
      return reading;
    };
    new Gauge({
      name: "hangar_host_volume_size_bytes",
      help: "Size of each volume disk on this host",
      labelNames: ["volume_id"],
      registers,
      async collect() {
        this.reset();
        for (const v of await read()) this.set({ volume_id: v.id }, v.size);
      },
    });
    new Gauge({
      name: "hangar_host_volume_used_bytes",
      help: "Bytes in use in each volume's filesystem on this host",
      labelNames: ["volume_id"],
      registers,
      async collect() {
        this.reset();
        for (const v of await read()) this.set({ volume_id: v.id }, v.used);
      },
    });
    this.#snapshotSeconds = new Histogram({
      name: "hangar_host_volume_snapshot_seconds",
      help: "Time to take a volume snapshot: copy (frozen when mounted), compress and store",
      labelNames: ["outcome"],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.#freezeSeconds = new Histogram({
      name: "hangar_host_volume_freeze_seconds",
      help: "Time a mounted volume stayed frozen (fsfreeze) for a snapshot's copy",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  /** Runs a snapshot, recording its duration and freeze time. */
  async timeSnapshot(take: () => Promise<HostVolumeSnapshotReply>): Promise<HostVolumeSnapshotReply> {
    const end = this.#snapshotSeconds.startTimer();
    try {
      const info = await take();
      end({ outcome: "ok" });
      if (info.freeze_ms > 0) this.#freezeSeconds.observe(info.freeze_ms / 1000);
      return info;
    } catch (err) {
      end({ outcome: "failed" });
      throw err;
    }
  }
}

async function readAll(disks: VolumeDisks): Promise<Array<{ id: string; size: number; used: number }>> {
  const out: Array<{ id: string; size: number; used: number }> = [];
  for (const id of await disks.list()) {
    // A volume deleted meanwhile is simply not reported.
    const stat = await disks.stat(id).catch(() => null);
    if (stat) out.push({ id, size: Math.round(stat.size_gb * 2 ** 30), used: stat.used_bytes });
  }
  return out;
}
