import { freemem, loadavg } from "node:os";
import type { HostHeartbeat } from "@hangar/service";
import { subjects } from "@hangar/service";

/** What a host says about itself in every heartbeat. */
export interface HostIdentity {
  hostId: string;
  region: string;
  cpus: number;
  memoryMb: number;
  address: string;
}

export interface HostHeartbeatsOptions {
  host: HostIdentity;
  /** How many machines run on the host now. */
  machinesRunning: () => number;
  /** Sends one heartbeat on its subject (core NATS: a missed one needs no history). */
  publish: (subject: string, payload: string) => void;
  everyMs?: number;
  /** The host's load now; by default the kernel's 1-minute load average and free memory. */
  load?: () => HostLoad;
}

/** How busy a host is now, as a heartbeat says it. */
export interface HostLoad {
  load1: number;
  freeMemoryMb: number;
}

/** The kernel's view: the 1-minute load average and the memory no process or cache holds. */
export function hostLoad(): HostLoad {
  return { load1: loadavg()[0] ?? 0, freeMemoryMb: Math.floor(freemem() / 1024 / 1024) };
}

/**
 * Publishes the host's heartbeat on `hosts.heartbeat.<host_id>` at once and then every `everyMs`
 * (1 s by default), so placement knows the host is alive and how loaded it is.
 */
export class HostHeartbeats {
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: HostHeartbeatsOptions) {}

  /** Sends the first heartbeat and keeps sending until `stop`. */
  start(): void {
    if (this.#timer) return;
    this.beat();
    this.#timer = setInterval(() => this.beat(), this.opts.everyMs ?? 1_000);
  }

  /** Sends one heartbeat now; returns what it sent. */
  beat(): HostHeartbeat {
    const { host } = this.opts;
    const load = (this.opts.load ?? hostLoad)();
    const hb: HostHeartbeat = {
      host_id: host.hostId,
      region: host.region,
      cpus: host.cpus,
      memory_mb: host.memoryMb,
      address: host.address,
      machines_running: this.opts.machinesRunning(),
      load1: load.load1,
      free_memory_mb: load.freeMemoryMb,
      ts: Date.now(),
    };
    this.opts.publish(subjects.heartbeat(host.hostId), JSON.stringify(hb));
    return hb;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
