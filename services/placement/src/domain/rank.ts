import type { HostState, KnownHost } from "@hangar/domain";

export type PlacementStrategy = "binpack" | "spread";

/** A machine asking for room. */
export interface GuestRequest {
  region: string;
  cpus: number;
  memoryMb: number;
}

type ActiveHost = KnownHost;

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
