import { createHash } from "node:crypto";
import { BlockList, isIPv6 } from "node:net";

/**
 * 6PN addressing, as Fly lays it out: every organization has a ULA /48, `fdaa:XXXX:XXXX::/48`, and
 * a machine's address is that prefix plus 80 bits derived from its id. Pure: the prefixes' registry
 * (org-networks.ts) decides which candidate an org gets.
 */

/** An organization's private network. */
export interface OrgNetwork {
  org: string;
  /** The 32 bits after `fdaa`, as 8 lowercase hex digits: the org's key in the registry. */
  net: string;
  /** The canonical prefix, e.g. `fdaa:12:abcd::/48`. */
  prefix: string;
}

/** What the run spec of a machine on its org's network carries (MachineRunSpec.sixpn). */
export interface SixpnSpec {
  org: string;
  prefix: string;
  address: string;
}

const NET_HEX = /^[0-9a-f]{8}$/;
/** The first addresses of a prefix are kept for the network itself (Fly's gateway and resolver live low). */
const RESERVED_HOST_IDS = 4n;
const HOST_ID_BITS = 80n;

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** The `attempt`-th candidate net of an org: 32 bits of sha256(slug + ":" + attempt), as 8 hex digits. */
export function orgNetCandidate(org: string, attempt: number): string {
  return sha256(`${org}:${attempt}`).subarray(0, 4).toString("hex");
}

/** Throws unless `net` is 8 lowercase hex digits. */
function checkNet(net: string): void {
  if (!NET_HEX.test(net)) throw new Error(`a 6PN net is 8 lowercase hex digits, not ${JSON.stringify(net)}`);
}

/** The org's network for a net the registry gave it. */
export function orgNetwork(org: string, net: string): OrgNetwork {
  checkNet(net);
  return { org, net, prefix: `${formatIpv6((0xfdaan << 112n) | (BigInt(`0x${net}`) << 80n))}/48` };
}

/** The 6PN address of a machine: the org's /48 plus 80 bits of sha256(machine id), never `::` to `::3`. */
export function machineAddress(network: OrgNetwork, machineId: string): string {
  const hostId = BigInt(`0x${sha256(machineId).subarray(0, 10).toString("hex")}`);
  // 4 in 2^80 ids would land on the network's own addresses: move those just past them.
  const safe = hostId < RESERVED_HOST_IDS ? hostId + RESERVED_HOST_IDS : hostId;
  return formatIpv6((0xfdaan << 112n) | (BigInt(`0x${network.net}`) << HOST_ID_BITS) | safe);
}

/** The run spec's `sixpn` of a machine on its org's network. */
export function sixpnSpec(network: OrgNetwork, machineId: string): SixpnSpec {
  return { org: network.org, prefix: network.prefix, address: machineAddress(network, machineId) };
}

/** Whether `address` is an IPv6 address inside the org's /48. */
export function inOrgNetwork(network: OrgNetwork, address: string): boolean {
  if (!isIPv6(address)) return false;
  const block = new BlockList();
  block.addSubnet(network.prefix.slice(0, -"/48".length), 48, "ipv6");
  return block.check(address, "ipv6");
}

/** The net (8 hex digits) of a 6PN address, or undefined for an address outside fdaa::/16. */
export function netOfAddress(address: string): string | undefined {
  const value = parseIpv6(address);
  if (value === undefined || value >> 112n !== 0xfdaan) return undefined;
  return ((value >> 80n) & 0xffffffffn).toString(16).padStart(8, "0");
}

/** An IPv6 address as a 128-bit number; undefined when it is not one (IPv4-embedded forms included). */
export function parseIpv6(address: string): bigint | undefined {
  if (!isIPv6(address) || address.includes(".") || address.includes("%")) return undefined;
  const [head = "", tail] = address.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(`0x${g}`), 0n);
}

/** A 128-bit number as an IPv6 address in its canonical text form (RFC 5952: lowercase, longest zero run as `::`). */
export function formatIpv6(value: bigint): string {
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16));
  // The WHATWG URL serializer compresses IPv6 exactly as RFC 5952 says.
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}
