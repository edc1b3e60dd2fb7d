import { describe, expect, it } from "vitest";
import { type FirewallState, firewallRuleset, firewallTable } from "./firewall.js";

const state: FirewallState = {
  table: firewallTable("host-1"),
  links: [
    {
      veth: "hvaaaaaaaaaaaa",
      ipv4: "10.130.16.2",
      sixpn: { prefix: "fdaa:1:2::/48", address: "fdaa:1:2:3::4" },
    },
    { veth: "hvbbbbbbbbbbbb", ipv4: "10.130.16.6" },
  ],
  machineCidr: "10.130.16.0/20",
  egressDeny: ["10.0.0.0/8", "fc00::/7", "::1"],
  resolver: "fdaa::3",
};

/** The body of a set or chain (`set x`, `chain y`) in a generated ruleset: up to its closing brace. */
function body(ruleset: string, header: string): string {
  const start = ruleset.indexOf(`  ${header} {\n`);
  if (start < 0) throw new Error(`no ${header}`);
  return ruleset.slice(start, ruleset.indexOf("\n  }", start));
}

/** The body of set `name`. */
function setBody(ruleset: string, name: string): string {
  return body(ruleset, `set ${name}`);
}

describe("firewall ruleset", () => {
  it("names one table per host agent", () => {
    expect(firewallTable("host-1")).toBe("hangar_host_1");
    expect(firewallTable("a.b c")).toBe("hangar_a_b_c");
  });

  it("replaces the whole table in one script: declared, deleted, defined again", () => {
    const lines = firewallRuleset(state).split("\n");
    expect(lines.slice(0, 3)).toEqual([
      "table inet hangar_host_1 {}",
      "delete table inet hangar_host_1",
      "table inet hangar_host_1 {",
    ]);
  });

  it("lists each machine's interface, its own addresses and its org's prefix", () => {
    const ruleset = firewallRuleset(state);
    expect(setBody(ruleset, "machine_ifs")).toContain('"hvaaaaaaaaaaaa", "hvbbbbbbbbbbbb"');
    expect(setBody(ruleset, "machine_v4")).toContain(
      '"hvaaaaaaaaaaaa" . 10.130.16.2, "hvbbbbbbbbbbbb" . 10.130.16.6',
    );
    // A machine without 6PN has no IPv6 source it may use, and no org to reach.
    expect(setBody(ruleset, "machine_v6")).toContain('elements = { "hvaaaaaaaaaaaa" . fdaa:1:2:3::4 }');
    expect(setBody(ruleset, "org_peers")).toContain('elements = { "hvaaaaaaaaaaaa" . fdaa:1:2::/48 }');
  });

  it("denies the configured blocks and always the machine CIDR, per family", () => {
    const ruleset = firewallRuleset(state);
    expect(setBody(ruleset, "egress_deny4")).toContain("elements = { 10.0.0.0/8, 10.130.16.0/20");
    expect(setBody(ruleset, "egress_deny6")).toContain("elements = { fc00::/7, ::1/128");
  });

  it("checks a machine's org before the egress deny list, and lets only DNS reach the host", () => {
    const ruleset = firewallRuleset(state);
    const fromMachine = body(ruleset, "chain from_machine")
      .split("\n")
      .map((l) => l.trim());
    const order = [
      "iifname . ip saddr != @machine_v4 drop",
      "iifname . ip6 daddr @org_peers accept",
      "ip6 daddr @egress_deny6 drop",
      "accept",
    ];
    const positions = order.map((rule) => fromMachine.indexOf(rule));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    const toHost = body(ruleset, "chain machine_to_host");
    expect(toHost).toContain("ip6 daddr fdaa::3 udp dport 53 accept");
    expect(toHost).toContain("ip6 daddr fdaa::3 tcp dport 53 accept");
    expect(toHost.trim().endsWith("drop")).toBe(true);
  });

  it("leaves sets empty without elements (nft refuses an empty list)", () => {
    const ruleset = firewallRuleset({ ...state, links: [] });
    expect(setBody(ruleset, "machine_ifs")).not.toContain("elements");
    expect(setBody(ruleset, "org_peers")).not.toContain("elements");
  });

  it("refuses anything that is not an interface name, address or block, so nothing can add a rule", () => {
    const bad: Array<Partial<FirewallState>> = [
      { table: "x; flush ruleset" },
      { resolver: "fdaa::3 accept" },
      { machineCidr: "fdaa::/48" },
      { egressDeny: ["10.0.0.0/8 }"] },
      { egressDeny: ["10.0.0.0/33"] },
      { links: [{ veth: 'hv" accept', ipv4: "10.130.16.2" }] },
      { links: [{ veth: "hvx", ipv4: "10.130.16.2; accept" }] },
      { links: [{ veth: "hvx", ipv4: "10.130.16.2", sixpn: { prefix: "10.0.0.0/8", address: "fdaa::5" } }] },
    ];
    for (const change of bad) expect(() => firewallRuleset({ ...state, ...change })).toThrow(/not/);
  });
});
