import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP, type LookupFunction } from "node:net";

/*
 * Addresses the platform's own outbound requests on a user's behalf may not reach: a build's
 * ADD <url>, a webhook's delivery. The control plane (NATS, the gateway, ops ports, host agents,
 * machines' 6PN) lives on such addresses: loopback, private, shared (CGNAT), link-local (the cloud
 * metadata address), unique-local (6PN is fdaa::/16), multicast, reserved and unspecified ones.
 */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 3],
] as const)
  PRIVATE.addSubnet(net, prefix, "ipv4");
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
  ["64:ff9b::", 96],
] as const)
  PRIVATE.addSubnet(net, prefix, "ipv6");

/** Whether `address` (an IP literal) is one of those; an IPv4-mapped IPv6 address is judged as its IPv4 one. */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return PRIVATE.check(mapped, "ipv4");
  const family = isIP(address);
  if (family === 0) return true;
  return PRIVATE.check(address, family === 4 ? "ipv4" : "ipv6");
}

/**
 * A DNS lookup for http(s) requests that refuses a name with any private address (the error from
 * `refused`), so the connection goes to an address that was checked and a second lookup (DNS
 * rebinding) cannot swap it. `isRefused` (default isPrivateAddress) judges each address: a caller
 * may refuse more (the edge proxy refuses its host's own public addresses too).
 */
export function publicOnlyLookup(
  refused: (hostname: string, address: string) => Error,
  isRefused: (address: string) => boolean = isPrivateAddress,
): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, "", 4);
      const bad = addresses.find((a) => isRefused(a.address));
      if (bad) return callback(refused(hostname, bad.address), "", 4);
      const first = addresses[0];
      if (!first)
        return callback(Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }), "", 4);
      if ((options as { all?: boolean }).all) return callback(null, addresses as never, first.family);
      callback(null, first.address, first.family);
    });
  };
}
