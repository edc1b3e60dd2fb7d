import { isIPv4, isIPv6, SocketAddress } from "node:net";

/**
 * Fly's `.internal` names, as one host's resolver answers them. Pure (no sockets): the agent feeds
 * it machines as the MACHINES stream changes, the server asks it who is asking and what a name
 * holds. Every answer is computed within the asker's org, so another org's app looks exactly like a
 * name that does not exist.
 */

/** DNS record types the table knows (RFC 1035, RFC 3596). */
export const RecordType = { TXT: 16, AAAA: 28, ANY: 255 } as const;

/** What the resolver knows of one machine. */
export interface DnsMachine {
  id: string;
  app: string;
  org: string;
  region: string;
  hostId: string;
  /** Its process group (config metadata `fly_process_group`, "app" when none). */
  processGroup: string;
  /** Its 6PN address; "" when it has none, and then it is in no answer. */
  address: string;
  /** Its IPv4 address on its host; "" when none. Only identifies a machine of this host asking. */
  ipv4: string;
  /** Started machines are the ones in answers (as on Fly). */
  started: boolean;
  /** A process runs: on an address two machines of this host held in turn, the running one asks. */
  running: boolean;
}

/** Where this resolver runs, which decides `top<N>.nearest.of.<app>.internal`. */
export interface NameTableOptions {
  hostId: string;
  region: string;
  /** Regions nearest first (HANGAR_HOST_AGENT_REGION_ORDER); regions not listed follow, alphabetically. */
  regionOrder?: readonly string[];
}

/** What a name holds for an asker. */
export type Resolution =
  /** Not an `.internal` name: the host's resolvers answer it. */
  | { kind: "forward" }
  /** No such name in the asker's org. */
  | { kind: "nxdomain" }
  /** The name exists; no records of the asked type is NODATA. */
  | { kind: "answer"; aaaa: readonly string[]; txt: readonly string[] };

/** The records of one existing name. */
interface NameRecords {
  aaaa: readonly string[];
  txt: readonly string[];
}

/** One org's names, built from its machines. */
interface Zone {
  names: Map<string, NameRecords>;
  /** Per app: its started machines' addresses, nearest first. */
  nearest: Map<string, readonly string[]>;
}

const NXDOMAIN: Resolution = { kind: "nxdomain" };
const FORWARD: Resolution = { kind: "forward" };
const NEAREST = /^top([1-9][0-9]{0,5})\.nearest\.of\.([^.]+)\.internal$/;

/** The `.internal` names of every org, rebuilt per org (lazily, at its next query) when a machine changes. */
export class NameTable {
  private readonly machines = new Map<string, DnsMachine>();
  private readonly zones = new Map<string, Zone>();
  private askers: Map<string, DnsMachine> | undefined;
  private readonly regionRank: Map<string, number>;
  #version = 0;

  constructor(private readonly opts: NameTableOptions) {
    this.regionRank = new Map((opts.regionOrder ?? []).map((r, i) => [r.toLowerCase(), i]));
  }

  /** Adds or replaces a machine (by app and id); the same record again changes nothing. */
  upsert(machine: DnsMachine): void {
    const key = `${machine.app}/${machine.id}`;
    const before = this.machines.get(key);
    // Most machine events (checks, leases, restarts counted) leave its names as they were: the
    // answers computed so far stay valid.
    if (before && sameRecord(before, machine)) return;
    if (before) this.changed(before);
    this.machines.set(key, machine);
    this.changed(machine);
  }

  /** Forgets a machine (destroyed). */
  remove(app: string, id: string): void {
    const key = `${app}/${id}`;
    const before = this.machines.get(key);
    if (!before) return;
    this.machines.delete(key);
    this.changed(before);
  }

  /** Goes up with every change: an answer computed at one version holds until the next. */
  get version(): number {
    return this.#version;
  }

  /** The machine of this host that sends from `address` (its 6PN or IPv4 address), if any. */
  asker(address: string): DnsMachine | undefined {
    if (!this.askers) this.askers = this.indexAskers();
    // The kernel's source addresses are canonical already: normalizing is for the rest.
    return this.askers.get(address) ?? this.askers.get(normalizeAddress(address));
  }

  /** What `name` holds for a machine of `org` asking for records of `type`. */
  resolve(org: string, name: string, type: number): Resolution {
    const n = name.toLowerCase().replace(/\.$/, "");
    if (n !== "internal" && !n.endsWith(".internal")) return FORWARD;
    const zone = this.zone(org);
    let records = zone.names.get(n);
    if (!records) {
      const top = NEAREST.exec(n);
      const nearest = top ? zone.nearest.get(top[2] as string) : undefined;
      if (!nearest) return NXDOMAIN;
      records = { aaaa: nearest.slice(0, Number(top?.[1])), txt: [] };
    }
    if (type === RecordType.ANY) return { kind: "answer", ...records };
    return {
      kind: "answer",
      aaaa: type === RecordType.AAAA ? records.aaaa : [],
      txt: type === RecordType.TXT ? records.txt : [],
    };
  }

  private changed(m: DnsMachine): void {
    this.#version++;
    this.zones.delete(m.org);
    if (m.hostId === this.opts.hostId) this.askers = undefined;
  }

  private indexAskers(): Map<string, DnsMachine> {
    const askers = new Map<string, DnsMachine>();
    for (const m of this.machines.values()) {
      if (m.hostId !== this.opts.hostId) continue;
      for (const address of [m.address, m.ipv4]) {
        if (!address) continue;
        const key = normalizeAddress(address);
        const held = askers.get(key);
        if (!held || (m.running && !held.running)) askers.set(key, m);
      }
    }
    return askers;
  }

  private zone(org: string): Zone {
    let zone = this.zones.get(org);
    if (!zone) {
      zone = this.buildZone(org);
      this.zones.set(org, zone);
    }
    return zone;
  }

  private buildZone(org: string): Zone {
    const byApp = new Map<string, DnsMachine[]>();
    for (const m of this.machines.values()) {
      if (m.org !== org) continue;
      const app = m.app.toLowerCase();
      byApp.set(app, [...(byApp.get(app) ?? []), m]);
    }
    const names = new Map<string, NameRecords>();
    const nearest = new Map<string, readonly string[]>();
    const apps = [...byApp.keys()].sort();
    if (apps.length > 0) names.set("_apps.internal", { aaaa: [], txt: [apps.join(",")] });
    for (const app of apps) {
      const all = (byApp.get(app) as DnsMachine[]).sort((a, b) => this.compareNearness(a, b));
      const answering = all.filter((m) => m.started && m.address);
      const addresses = (keep: (m: DnsMachine) => boolean) => answering.filter(keep).map((m) => m.address);
      const suffix = `${app}.internal`;
      nearest.set(
        app,
        addresses(() => true),
      );
      names.set(suffix, { aaaa: addresses(() => true), txt: [] });
      const regions = [...new Set(answering.map((m) => m.region.toLowerCase()))].sort();
      names.set(`regions.${suffix}`, { aaaa: [], txt: regions.length ? [regions.join(",")] : [] });
      const vms = [...answering].sort((a, b) => compareIds(a.id, b.id)).map((m) => `${m.id} ${m.region}`);
      names.set(`vms.${suffix}`, { aaaa: [], txt: vms.length ? [vms.join(",")] : [] });
      // A machine's id, region or group is a name while the machine exists; only started ones answer.
      const groupBy = (keyOf: (m: DnsMachine) => string, name: (key: string) => string) => {
        for (const key of new Set(all.map(keyOf)))
          names.set(name(key), { aaaa: addresses((m) => keyOf(m) === key), txt: [] });
      };
      groupBy(
        (m) => m.id.toLowerCase(),
        (id) => `${id}.vm.${suffix}`,
      );
      groupBy(
        (m) => m.region.toLowerCase(),
        (region) => `${region}.${suffix}`,
      );
      groupBy(
        (m) => m.processGroup.toLowerCase(),
        (group) => `${group}.process.${suffix}`,
      );
    }
    return { names, nearest };
  }

  /** Same host first, then the same region, then regions in the configured order; ties by machine id. */
  private compareNearness(a: DnsMachine, b: DnsMachine): number {
    const { hostId, region } = this.opts;
    const rank = (m: DnsMachine): [number, number, number, string] => {
      const r = m.region.toLowerCase();
      return [
        m.hostId === hostId ? 0 : 1,
        r === region.toLowerCase() ? 0 : 1,
        this.regionRank.get(r) ?? Number.MAX_SAFE_INTEGER,
        r,
      ];
    };
    const [ra, rb] = [rank(a), rank(b)];
    for (let i = 0; i < 3; i++) {
      const d = (ra[i] as number) - (rb[i] as number);
      if (d !== 0) return d;
    }
    return compareIds(ra[3], rb[3]) || compareIds(a.id, b.id);
  }
}

function sameRecord(a: DnsMachine, b: DnsMachine): boolean {
  return (Object.keys(a) as Array<keyof DnsMachine>).every((k) => a[k] === b[k]);
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** An address as the table keys it: canonical IPv6 text, or IPv4 (also out of an IPv4-mapped IPv6 one). */
function normalizeAddress(address: string): string {
  const a = address.replace(/%.*$/, "");
  if (isIPv4(a)) return a;
  if (!isIPv6(a)) return a.toLowerCase();
  const canonical = new SocketAddress({ address: a, family: "ipv6" }).address;
  return canonical.startsWith("::ffff:") && canonical.includes(".") ? canonical.slice(7) : canonical;
}
