import type { LoadSample, ProxyHeartbeat } from "@hangar/service";

/** A proxy is live, and its samples count, while it was heard from within this long (ms). */
export const PROXY_LIVE_MS = 3_000;

/**
 * How often a drain looks at the board (ms): proxies report a cordon and a drained machine within
 * 50 ms (services/proxy/src/load.ts), and a look is a scan of the live proxies' latest word.
 */
export const DRAIN_POLL_MS = 50;

/** An app's load as the live proxies report it now. */
export interface AppLoad {
  /** Sum over live proxies of their recent sample's concurrency (queued requests included). */
  concurrency: number;
  /** Live proxies (whether or not they carry the app's traffic). */
  proxies: number;
  /** In flight per machine id, summed over proxies. */
  machines: Map<string, number>;
  /**
   * Demand per region: each machine's load in the machine's region, plus what a proxy holds that no
   * machine took yet (queued) in the proxy's region.
   */
  regions: Map<string, number>;
}

/** Whether a cordoned machine is drained, and which proxies it still waits for when not. */
export interface DrainStatus {
  drained: boolean;
  waitingFor: string[];
}

interface ProxyRecord {
  lastSeenMs: number;
  heartbeat: ProxyHeartbeat | undefined;
  samples: Map<string, { sample: LoadSample; atMs: number }>;
}

/**
 * The latest word of every proxy: its heartbeat and its load sample per app. Times are the
 * scheduler's own receive times, so proxies' clocks do not matter. No I/O: the caller feeds it.
 */
export class LoadBoard {
  private readonly proxies = new Map<string, ProxyRecord>();

  constructor(private readonly liveMs = PROXY_LIVE_MS) {}

  /** Records a proxy heartbeat received at `nowMs`. */
  heartbeat(hb: ProxyHeartbeat, nowMs: number): void {
    const p = this.record(hb.proxy_id, nowMs);
    p.heartbeat = hb;
  }

  /** Records a load sample received at `nowMs`. */
  sample(s: LoadSample, nowMs: number): void {
    const p = this.record(s.proxy_id, nowMs);
    p.samples.set(s.app, { sample: s, atMs: nowMs });
  }

  /** Ids of the proxies heard from within the live window. */
  liveProxies(nowMs: number): string[] {
    const out: string[] = [];
    for (const [id, p] of this.proxies) if (nowMs - p.lastSeenMs < this.liveMs) out.push(id);
    return out;
  }

  /** The app's load now: live proxies' recent samples (a proxy with no recent sample adds 0). */
  appLoad(app: string, nowMs: number): AppLoad {
    const load: AppLoad = { concurrency: 0, proxies: 0, machines: new Map(), regions: new Map() };
    for (const p of this.proxies.values()) {
      if (nowMs - p.lastSeenMs >= this.liveMs) continue;
      load.proxies++;
      const entry = p.samples.get(app);
      if (!entry || nowMs - entry.atMs >= this.liveMs) continue;
      const s = entry.sample;
      load.concurrency += s.concurrency;
      let onMachines = 0;
      for (const m of s.machines) {
        onMachines += m.concurrency;
        load.machines.set(m.machine_id, (load.machines.get(m.machine_id) ?? 0) + m.concurrency);
        load.regions.set(m.region, (load.regions.get(m.region) ?? 0) + m.concurrency);
      }
      const held = s.concurrency - onMachines;
      if (held > 0) load.regions.set(s.region, (load.regions.get(s.region) ?? 0) + held);
    }
    return load;
  }

  /**
   * A machine cordoned at MACHINES sequence `seq` is drained when every live proxy has folded that
   * sequence (so it routes nothing new to the machine) and has nothing in flight on it: the app is not
   * among its heartbeat's apps, or its sample taken after the cordon shows 0 on the machine.
   */
  drainStatus(app: string, machineId: string, seq: number, nowMs: number): DrainStatus {
    const waitingFor: string[] = [];
    for (const [id, p] of this.proxies) {
      if (nowMs - p.lastSeenMs >= this.liveMs) continue;
      const hb = p.heartbeat;
      if (!hb || hb.machines_seq < seq) {
        waitingFor.push(id);
        continue;
      }
      if (!hb.apps.includes(app)) continue;
      const s = p.samples.get(app)?.sample;
      const onMachine = s?.machines.find((m) => m.machine_id === machineId)?.concurrency ?? 0;
      if (!s || s.machines_seq < seq || onMachine > 0) waitingFor.push(id);
    }
    return { drained: waitingFor.length === 0, waitingFor };
  }

  /** Forgets proxies silent for much longer than the live window. */
  prune(nowMs: number): void {
    for (const [id, p] of this.proxies) if (nowMs - p.lastSeenMs > this.liveMs * 20) this.proxies.delete(id);
  }

  private record(proxyId: string, nowMs: number): ProxyRecord {
    let p = this.proxies.get(proxyId);
    if (!p) {
      p = { lastSeenMs: nowMs, heartbeat: undefined, samples: new Map() };
      this.proxies.set(proxyId, p);
    }
    p.lastSeenMs = Math.max(p.lastSeenMs, nowMs);
    return p;
  }
}

/** A LoadSample from a message body, or undefined when it is not one (other senders, versions). */
export function parseLoadSample(data: unknown): LoadSample | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const s = data as Partial<LoadSample>;
  if (typeof s.proxy_id !== "string" || typeof s.app !== "string" || !isCount(s.concurrency))
    return undefined;
  const machines = Array.isArray(s.machines)
    ? s.machines.filter(
        (m) => typeof m?.machine_id === "string" && typeof m.region === "string" && isCount(m.concurrency),
      )
    : [];
  return {
    proxy_id: s.proxy_id,
    region: typeof s.region === "string" ? s.region : "",
    app: s.app,
    ts: typeof s.ts === "number" ? s.ts : 0,
    machines_seq: typeof s.machines_seq === "number" ? s.machines_seq : 0,
    concurrency: s.concurrency,
    queued: isCount(s.queued) ? s.queued : 0,
    machines,
  };
}

/** A ProxyHeartbeat from a message body, or undefined when it is not one. */
export function parseProxyHeartbeat(data: unknown): ProxyHeartbeat | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const h = data as Partial<ProxyHeartbeat>;
  if (typeof h.proxy_id !== "string") return undefined;
  return {
    proxy_id: h.proxy_id,
    region: typeof h.region === "string" ? h.region : "",
    ts: typeof h.ts === "number" ? h.ts : 0,
    machines_seq: typeof h.machines_seq === "number" ? h.machines_seq : 0,
    apps: Array.isArray(h.apps) ? h.apps.filter((a): a is string => typeof a === "string") : [],
  };
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0;
}
