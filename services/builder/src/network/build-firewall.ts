import { isIPv4 } from "node:net";
import { BUILT_IN_EGRESS_DENY, checked, ipv4ToNumber, numberToIpv4 } from "@hangar/oci";

/** One build's network as its firewall sees it. */
export interface BuildLink {
  /** The nftables table of this build network alone (family inet). */
  table: string;
  /** The host end of the build's veth pair. */
  veth: string;
  /** The build's address, the .2 of its /30. */
  address: string;
  /** The block every build's /30 comes from: no build reaches another. */
  cidr: string;
  /** The nameservers the build's resolv.conf names: reachable on port 53 only, even when private. */
  nameservers: readonly string[];
}

const TABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const CIDR4 = /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/;

/**
 * The nft script that makes one build network's table: from the build, the host itself answers
 * nothing (no gateway, NATS, ops or proxy port); forwarded traffic may go to the nameservers'
 * port 53 and to public addresses, never to a private, loopback or reserved block (machines, 6PN,
 * the control plane, other builds), and leaves masqueraded behind the host's address; nothing
 * from outside starts a connection into the build. IPv4 only: the build has no IPv6 address.
 */
export function buildFirewallRuleset(link: BuildLink): string {
  const table = checked("table name", link.table, (t) => TABLE.test(t));
  const veth = `"${checked("interface name", link.veth, (v) => IFNAME.test(v))}"`;
  const address = checked("IPv4 address", link.address, isIPv4);
  const cidr = checked("IPv4 block", link.cidr, (c) => CIDR4.test(c) && isIPv4(c.split("/")[0] ?? ""));
  const nameservers = link.nameservers.map((n) => checked("nameserver", n, isIPv4));
  const deny = [...BUILT_IN_EGRESS_DENY.filter((d) => !d.includes(":")), cidr];
  return [
    `table inet ${table} {}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    "  set egress_deny4 {",
    "    type ipv4_addr",
    "    flags interval",
    "    auto-merge",
    `    elements = { ${deny.join(", ")} }`,
    "  }",
    "",
    "  chain input {",
    "    type filter hook input priority filter; policy accept;",
    `    iifname ${veth} drop`,
    "  }",
    "",
    "  chain forward {",
    "    type filter hook forward priority filter; policy accept;",
    `    iifname ${veth} jump from_build`,
    `    oifname ${veth} jump to_build`,
    "  }",
    "",
    "  chain from_build {",
    "    # The build's root has CAP_NET_RAW in its user namespace: it sends only from its own address.",
    `    ip saddr != ${address} drop`,
    "    meta nfproto ipv6 drop",
    "    ct state invalid drop",
    "    ct state established,related accept",
    ...nameservers.flatMap((n) => [
      `    ip daddr ${n} udp dport 53 accept`,
      `    ip daddr ${n} tcp dport 53 accept`,
    ]),
    "    ip daddr @egress_deny4 drop",
    "    accept",
    "  }",
    "",
    "  chain to_build {",
    "    ct state established,related accept",
    "    drop",
    "  }",
    "",
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    `    ip saddr ${address} oifname != ${veth} masquerade`,
    "  }",
    "}",
    "",
  ].join("\n");
}

/** The nameservers of a resolv.conf's text, in order (IPv4 only: builds have no IPv6). */
export function resolvConfNameservers(text: string): string[] {
  const found: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m?.[1] && isIPv4(m[1])) found.push(m[1]);
  }
  return found;
}

/** Whether a nameserver is on the host's loopback, where a build cannot reach it. */
export function isLoopback(address: string): boolean {
  return address.startsWith("127.");
}

/** The /30s of an IPv4 block, as [host end, build address] pairs (.1 and .2 of each). */
export function buildSubnets(cidr: string): Array<{ host: string; build: string }> {
  const [address = "", length = ""] = cidr.split("/");
  const bits = Number(length);
  if (!isIPv4(address) || !/^\d{1,2}$/.test(length) || bits > 30 || bits < 16) {
    throw new Error(`not an IPv4 block between /16 and /30: ${JSON.stringify(cidr)}`);
  }
  const size = 2 ** (32 - bits);
  const base = ipv4ToNumber(address) - (ipv4ToNumber(address) % size);
  return Array.from({ length: size / 4 }, (_, i) => ({
    host: numberToIpv4(base + i * 4 + 1),
    build: numberToIpv4(base + i * 4 + 2),
  }));
}
