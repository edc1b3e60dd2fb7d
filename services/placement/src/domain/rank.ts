import { type HostState, hostHasRoom, type KnownHost } from "@hangar/domain";

export type PlacementStrategy = "binpack" | "spread";

/** A machine asking for room. */
export interface GuestRequest {
  region: string;
  cpus: number;
  memoryMb: number;
}

type ActiveHost = KnownHost;

/**
 * The hosts that can take a guest, best first. Bin-packing fills the fullest host that still has
 * room (fewer hosts stay busy, big holes stay free for big machines); spreading prefers the emptiest.
 * Memory decides first because it is the resource that cannot be overcommitted.
 */
export function rankHosts(
  hosts: Iterable<HostState>,
  guest: GuestRequest,
  strategy: PlacementStrategy,
  isAlive: (hostId: string) => boolean,
): ActiveHost[] {
  const fit: ActiveHost[] = [];
  for (const h of hosts) {
    if (h.status !== "active" || h.region !== guest.region || !isAlive(h.hostId)) continue;
    if (hostHasRoom(h, guest.cpus, guest.memoryMb)) fit.push(h);
  }
  const free = (h: ActiveHost) => (h.memoryMb - h.usedMemoryMb) / h.memoryMb;
  const freeCpu = (h: ActiveHost) => (h.cpus - h.usedCpus) / h.cpus;
  const sign = strategy === "binpack" ? 1 : -1;
  return fit.sort(
    (a, b) =>
      sign * (free(a) - free(b)) || sign * (freeCpu(a) - freeCpu(b)) || a.hostId.localeCompare(b.hostId),
  );
}

/** Why nothing fits, in words an operator can act on. */
export function noRoomMessage(hosts: Iterable<HostState>, guest: GuestRequest): string {
  const inRegion: ActiveHost[] = [];
  const regions = new Set<string>();
  for (const h of hosts) {
    if (h.status !== "active") continue;
    regions.add(h.region);
    if (h.region === guest.region) inRegion.push(h);
  }
  const want = `${guest.cpus} cpus and ${guest.memoryMb} MB`;
  if (inRegion.length === 0) {
    const known = [...regions].sort().join(", ") || "none";
    return `insufficient capacity: no host in region ${guest.region} (regions with hosts: ${known})`;
  }
  const biggest = inRegion.reduce((a, b) => (b.memoryMb > a.memoryMb ? b : a));
  if (guest.memoryMb > biggest.memoryMb || guest.cpus > biggest.cpus) {
    return `insufficient capacity: ${want} is larger than any host in region ${guest.region} (largest: ${biggest.cpus} cpus, ${biggest.memoryMb} MB)`;
  }
  return `insufficient capacity: no host in region ${guest.region} has ${want} free right now`;
}
