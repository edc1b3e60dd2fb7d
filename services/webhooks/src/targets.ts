import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP, type LookupFunction } from "node:net";

/**
 * Where a webhook may not reach unless the operator allows it (HANGAR_WEBHOOKS_ALLOW_PRIVATE_TARGETS):
 * loopback, private, link-local, shared (CGNAT), unique-local (6PN is fdaa::/16), multicast and
 * reserved addresses. The platform's control plane (NATS, the gateway, ops ports, host agents) lives on
 * such addresses, so a webhook cannot be pointed at it (docs/webhooks.md "What a webhook may reach").
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
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
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

/** Whether an address is one a webhook may not reach by default (IPv4-mapped IPv6 as its IPv4). */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return PRIVATE.check(mapped, "ipv4");
  const family = isIP(address);
  if (family === 0) return true;
  return PRIVATE.check(address, family === 4 ? "ipv4" : "ipv6");
}

/** A webhook target refused: its address is private and the operator did not allow that. */
export class TargetRefusedError extends Error {
  override readonly name = "TargetRefusedError";
}

function refusal(host: string, address: string): TargetRefusedError {
  return new TargetRefusedError(
    `${host} is ${address}, a private, loopback or link-local address, which webhooks may not reach`,
  );
}

/** The host of a URL as net.connect takes it (IPv6 without brackets). */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

/**
 * DNS lookup for webhook requests that refuses private answers, so a name that resolves (or later
 * rebinds) to the control plane is refused at connect time and not only when the webhook was made.
 */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, "", 0);
      const bad = allowPrivate ? undefined : addresses.find((a) => isPrivateAddress(a.address));
      if (bad)
        return callback(Object.assign(refusal(hostname, bad.address), { code: "EHOSTREFUSED" }), "", 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0];
      if (!first)
        return callback(Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }), "", 0);
      callback(null, first.address, first.family);
    });
  };
}

/**
 * Checks a webhook's URL when it is made: its host must resolve, and (unless allowed) to public
 * addresses only. Throws TargetRefusedError with a message that says why.
 */
export async function checkTarget(url: URL, allowPrivate: boolean): Promise<void> {
  const host = hostOf(url);
  const addresses: string[] = isIP(host)
    ? [host]
    : await new Promise((resolve, reject) =>
        dnsLookup(host, { all: true }, (err, found) =>
          err
            ? reject(new TargetRefusedError(`${host} does not resolve (${err.code ?? err.message})`))
            : resolve(found.map((a) => a.address)),
        ),
      );
  if (allowPrivate) return;
  const bad = addresses.find(isPrivateAddress);
  if (bad) throw refusal(host, bad);
}
