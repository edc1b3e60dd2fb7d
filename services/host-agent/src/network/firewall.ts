import { isIPv4, isIPv6 } from "node:net";
import { BUILT_IN_EGRESS_DENY, checked } from "@hangar/oci";

/** One machine as the firewall sees it: the host end of its veth and the addresses it may send from. */
export interface FirewallLink {
  /** The veth's host end (in the host namespace). */
  veth: string;
  ipv4: string;
  /** Its 6PN address and its org's /48; absent for a machine without 6PN (no IPv6 at all). */
  sixpn?: { prefix: string; address: string };
}

/** Everything one host agent's table is made from: it is always generated whole, never patched. */
export interface FirewallState {
  /** From firewallTable(hostId). */
  table: string;
  links: readonly FirewallLink[];
  /** The IPv4 block machines' /30s come from: never a source of traffic into a machine, never a destination out of one. */
  machineCidr: string;
  /** Destinations no machine reaches (IPv4 and IPv6 CIDRs), besides BUILT_IN_EGRESS_DENY; its own org's 6PN prefix excepted. */
  egressDeny: readonly string[];
  /** IPv4 sources whose forwarded packets may reach machines (the control plane elsewhere); the host's own always may. */
  controlSources: readonly string[];
  /** Other hosts' machines' 6PN addresses (the remote routes): the only 6PN sources from off the host let into a machine. */
  remotes: readonly string[];
  /** The host's resolver address, the one place on the host a machine reaches (DNS, port 53). */
  resolver: string;
}

/** The name of host `hostId`'s table (family inet): one per host agent, so agents never touch each other's. */
export function firewallTable(hostId: string): string {
  return `hangar_${hostId.replace(/[^A-Za-z0-9_]/g, "_")}`;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

function cidr(value: string): { family: 4 | 6; text: string } {
  const [address = "", length, ...rest] = value.split("/");
  const family = isIPv4(address) ? 4 : isIPv6(address) ? 6 : 0;
  const max = family === 4 ? 32 : 128;
  const bits = length === undefined ? max : Number(length);
  if (family === 0 || rest.length > 0 || !Number.isInteger(bits) || bits < 0 || bits > max || length === "") {
    throw new Error(`not an IP address or CIDR: ${JSON.stringify(value)}`);
  }
  return { family, text: `${address}/${bits}` };
}

/** A set declaration; nft refuses `elements = { }`, so an empty set has none. */
function set(name: string, type: string, elements: string[], flags = ""): string {
  const lines = [`  set ${name} {`, `    type ${type}`];
  if (flags) lines.push(`    ${flags}`);
  if (elements.length > 0) lines.push(`    elements = { ${elements.join(", ")} }`);
  lines.push("  }");
  return lines.join("\n");
}

/**
 * The nft script that replaces the table with one built from `state`, in one transaction (declaring
 * the table first makes the delete succeed when it does not exist yet): packets never see a half-made
 * table, and established connections keep flowing since conntrack outlives the rules. Every value is
 * validated, so nothing from outside can add a rule.
 */
export function firewallRuleset(state: FirewallState): string {
  const table = checked("table name", state.table, (t) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(t));
  const resolver = checked("resolver address", state.resolver, isIPv6);
  const machineCidr = cidr(state.machineCidr);
  if (machineCidr.family !== 4) throw new Error(`not an IPv4 machine CIDR: ${state.machineCidr}`);
  const deny = [...BUILT_IN_EGRESS_DENY, ...state.egressDeny].map(cidr).concat(machineCidr);
  const control = state.controlSources.map(cidr);
  if (control.some((c) => c.family !== 4))
    throw new Error(`control sources must be IPv4: ${state.controlSources.join(", ")}`);
  const ifs: string[] = [];
  const v4: string[] = [];
  const v6: string[] = [];
  const peers: string[] = [];
  for (const link of state.links) {
    const veth = `"${checked("interface name", link.veth, (v) => IFNAME.test(v))}"`;
    ifs.push(veth);
    v4.push(`${veth} . ${checked("IPv4 address", link.ipv4, isIPv4)}`);
    if (link.sixpn) {
      const prefix = cidr(link.sixpn.prefix);
      if (prefix.family !== 6) throw new Error(`not an IPv6 prefix: ${link.sixpn.prefix}`);
      v6.push(`${veth} . ${checked("IPv6 address", link.sixpn.address, isIPv6)}`);
      peers.push(`${veth} . ${prefix.text}`);
    }
  }
  const remotes = state.remotes.map((a) => checked("IPv6 address", a, isIPv6));
  const unique = (items: string[]) => [...new Set(items)];
  const antiSpoof = [
    "    # A machine sends only from its own addresses (it has CAP_NET_RAW in its user namespace).",
    "    iifname . ip saddr != @machine_v4 drop",
    "    iifname . ip6 saddr != @machine_v6 drop",
  ];
  return [
    `table inet ${table} {}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    "  # The host ends of this agent's machines' veths.",
    set("machine_ifs", "ifname", unique(ifs)),
    set("machine_v4", "ifname . ipv4_addr", unique(v4)),
    set("machine_v6", "ifname . ipv6_addr", unique(v6)),
    "  # Each machine's org network: the 6PN prefix it reaches and is reached from.",
    set("org_peers", "ifname . ipv6_addr", unique(peers), "flags interval"),
    set("machine_cidr", "ipv4_addr", [machineCidr.text], "flags interval"),
    set("remote_6pn", "ipv6_addr", unique(remotes)),
    set("control_sources", "ipv4_addr", unique(control.map((c) => c.text)), "flags interval\n    auto-merge"),
    set(
      "egress_deny4",
      "ipv4_addr",
      unique(deny.filter((d) => d.family === 4).map((d) => d.text)),
      "flags interval\n    auto-merge",
    ),
    set(
      "egress_deny6",
      "ipv6_addr",
      unique(deny.filter((d) => d.family === 6).map((d) => d.text)),
      "flags interval\n    auto-merge",
    ),
    "",
    "  # Only machines' traffic is this table's business: anything else passes as it would without it.",
    "  chain forward {",
    "    type filter hook forward priority filter; policy accept;",
    "    iifname @machine_ifs jump from_machine",
    "    oifname @machine_ifs jump to_machine",
    "  }",
    "",
    "  chain from_machine {",
    ...antiSpoof,
    "    ct state invalid drop",
    "    ct state established,related accept",
    "    iifname . ip6 daddr @org_peers accept",
    "    ip daddr @egress_deny4 drop",
    "    ip6 daddr @egress_deny6 drop",
    "    # Egress: IPv4 leaves masqueraded (postrouting).",
    "    accept",
    "  }",
    "",
    "  chain to_machine {",
    "    ct state established,related accept",
    "    # From off the host, only a known remote machine of the same org, arriving where its route",
    "    # points (reverse path): no forged 6PN source from the underlay or uplink gets in.",
    "    meta nfproto ipv6 fib saddr . iif oif missing drop",
    "    ip6 saddr @remote_6pn oifname . ip6 saddr @org_peers accept",
    "    # Forwarded IPv4 comes only from the control plane elsewhere (proxy, tunnels); the host's own",
    "    # packets (output path) never pass here. Never from a machine, nor anyone else on the network.",
    "    ip saddr @control_sources accept",
    "    drop",
    "  }",
    "",
    "  chain input {",
    "    type filter hook input priority filter; policy accept;",
    "    iifname @machine_ifs jump machine_to_host",
    "  }",
    "",
    "  # Nothing on the host answers a machine but the resolver: no control-plane port is reachable.",
    "  chain machine_to_host {",
    "    # Neighbour discovery of the veth's link-local gateway (fe80::1), from link-local or unspecified sources.",
    "    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept",
    ...antiSpoof,
    "    ct state established,related accept",
    `    ip6 daddr ${resolver} udp dport 53 accept`,
    `    ip6 daddr ${resolver} tcp dport 53 accept`,
    "    drop",
    "  }",
    "",
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    "    ip saddr @machine_cidr oifname != @machine_ifs masquerade",
    "  }",
    "}",
    "",
  ].join("\n");
}
