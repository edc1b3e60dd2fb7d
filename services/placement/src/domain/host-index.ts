import { type HostState, hostHasRoom, type KnownHost } from "@hangar/domain";
import type { GuestRequest, PlacementStrategy } from "./rank.js";

/** A host as the index orders it: its free memory and CPU as fractions of its capacity. */
interface Slot {
  host: KnownHost;
  freeMemory: number;
  freeCpu: number;
}

/** The active hosts of one region with room left, in both strategies' orders. */
interface RegionHosts {
  /** Active hosts, with room left or not. */
  active: number;
  /** Fullest first: free memory, then free CPU ascending, then host id. */
  binpack: Slot[];
  /** Emptiest first: free memory, then free CPU descending, then host id. */
  spread: Slot[];
  /** How many active hosts have each memory size, for the largest one. */
  memorySizes: Map<number, number>;
}

const binpackOrder = (a: Slot, b: Slot) =>
  a.freeMemory - b.freeMemory || a.freeCpu - b.freeCpu || compareIds(a.host.hostId, b.host.hostId);
const spreadOrder = (a: Slot, b: Slot) =>
  b.freeMemory - a.freeMemory || b.freeCpu - a.freeCpu || compareIds(a.host.hostId, b.host.hostId);
const compareIds = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A key that sorts before (binpack) or after (spread) every host with `freeMemory` free. */
const probe = (freeMemory: number) =>
  ({ freeMemory, freeCpu: Number.NEGATIVE_INFINITY, host: { hostId: "" } }) as Slot;

/** The first index in `sorted` whose slot does not come before `slot`. */
function lowerBound(sorted: Slot[], slot: Slot, order: (a: Slot, b: Slot) => number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (order(sorted[mid] as Slot, slot) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The hosts ranked for placement, kept in order as reservations come and go, and which host holds
 * each machine's room. Bin-packing fills the fullest host that still has room (fewer hosts stay
 * busy, big holes stay free for big machines); spreading prefers the emptiest. Memory decides first
 * because it is the resource that cannot be overcommitted.
 *
 * Each change of a host moves it in two sorted arrays (a binary search and a splice), so a request
 * reads its best hosts without sorting the fleet, and skips in one search every host too small to
 * take the guest even when empty. A host without a CPU or a MB left is in neither array: every guest
 * asks for at least one of each (MachineConfigSchema), so a full fleet costs no scanning.
 */
export class HostIndex {
  private readonly regions = new Map<string, RegionHosts>();
  /** Active hosts by id: their region. */
  private readonly active = new Map<string, string>();
  /** Active hosts with room left, by id. */
  private readonly slots = new Map<string, Slot>();
  private readonly machineHosts = new Map<string, string>();

  /** Takes in a host's new state. */
  update(state: HostState): void {
    if (state.status === "absent") return;
    this.remove(state.hostId);
    if (state.status === "active") this.insert(state);
  }

  /** Takes in a reservation of a machine's room on a host. */
  reserved(machineId: string, hostId: string): void {
    this.machineHosts.set(machineId, hostId);
  }

  /** Takes in the release of a machine's room on a host. */
  released(machineId: string, hostId: string): void {
    if (this.machineHosts.get(machineId) === hostId) this.machineHosts.delete(machineId);
  }

  /** The host holding room for a machine, if any. */
  hostOf(machineId: string): string | undefined {
    return this.machineHosts.get(machineId);
  }

  /** How many active hosts a region has (with room left or not). */
  activeIn(region: string): number {
    return this.regions.get(region)?.active ?? 0;
  }

  /** The active hosts of the guest's region that have room for it and are usable, best first. */
  *ranked(
    guest: GuestRequest,
    strategy: PlacementStrategy,
    usable: (hostId: string) => boolean,
  ): Generator<KnownHost> {
    const region = this.regions.get(guest.region);
    if (!region) return;
    const least = this.least(region, guest);
    if (strategy === "binpack") {
      const order = region.binpack;
      for (let i = lowerBound(order, probe(least), binpackOrder); i < order.length; i++) {
        const h = (order[i] as Slot).host;
        if (hostHasRoom(h, guest.cpus, guest.memoryMb) && usable(h.hostId)) yield h;
      }
    } else {
      for (const slot of region.spread) {
        if (slot.freeMemory < least) return;
        if (hostHasRoom(slot.host, guest.cpus, guest.memoryMb) && usable(slot.host.hostId)) yield slot.host;
      }
    }
  }

  /**
   * The first usable host that fits from the `skip`-th host on, of the region's hosts in rank order
   * that are large enough to fit the guest (wrapping round to the best): how a request picks one of
   * the best hosts without listing them.
   */
  from(
    guest: GuestRequest,
    strategy: PlacementStrategy,
    skip: number,
    usable: (hostId: string) => boolean,
  ): KnownHost | undefined {
    const region = this.regions.get(guest.region);
    if (!region) return undefined;
    const least = this.least(region, guest);
    const order = strategy === "binpack" ? region.binpack : region.spread;
    let start = 0;
    let end = order.length;
    if (strategy === "binpack") start = lowerBound(order, probe(least), binpackOrder);
    else end = lowerBound(order, probe(least), spreadOrder);
    const count = end - start;
    for (let n = 0; n < count; n++) {
      const h = (order[start + ((skip + n) % count)] as Slot).host;
      if (hostHasRoom(h, guest.cpus, guest.memoryMb) && usable(h.hostId)) return h;
    }
    return undefined;
  }

  /** A host fits only if its free share covers the guest's share of it, smallest on the largest host. */
  private least(region: RegionHosts, guest: GuestRequest): number {
    let largest = 0;
    for (const size of region.memorySizes.keys()) largest = Math.max(largest, size);
    return largest > 0 ? guest.memoryMb / largest : 0;
  }

  private insert(host: KnownHost): void {
    let region = this.regions.get(host.region);
    if (!region) {
      region = { active: 0, binpack: [], spread: [], memorySizes: new Map() };
      this.regions.set(host.region, region);
    }
    region.active++;
    this.active.set(host.hostId, host.region);
    if (host.usedCpus >= host.cpus || host.usedMemoryMb >= host.memoryMb) return;
    const slot: Slot = {
      host,
      freeMemory: (host.memoryMb - host.usedMemoryMb) / host.memoryMb,
      freeCpu: (host.cpus - host.usedCpus) / host.cpus,
    };
    region.binpack.splice(lowerBound(region.binpack, slot, binpackOrder), 0, slot);
    region.spread.splice(lowerBound(region.spread, slot, spreadOrder), 0, slot);
    region.memorySizes.set(host.memoryMb, (region.memorySizes.get(host.memoryMb) ?? 0) + 1);
    this.slots.set(host.hostId, slot);
  }

  private remove(hostId: string): void {
    const regionName = this.active.get(hostId);
    if (regionName === undefined) return;
    this.active.delete(hostId);
    const region = this.regions.get(regionName);
    if (!region) return;
    region.active--;
    const slot = this.slots.get(hostId);
    if (!slot) return;
    this.slots.delete(hostId);
    region.binpack.splice(lowerBound(region.binpack, slot, binpackOrder), 1);
    region.spread.splice(lowerBound(region.spread, slot, spreadOrder), 1);
    const left = (region.memorySizes.get(slot.host.memoryMb) ?? 1) - 1;
    if (left > 0) region.memorySizes.set(slot.host.memoryMb, left);
    else region.memorySizes.delete(slot.host.memoryMb);
  }
}
