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
  egressDeny: ["203.0.113.7"],
  controlSources: ["10.127.0.1/32"],
  remotes: ["fdaa:1:2:9::1"],
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

  it("always denies the built-in blocks and the machine CIDR, the configured ones besides, per family", () => {
    const bare = firewallRuleset({ ...state, egressDeny: [] });
    expect(setBody(bare, "egress_deny4")).toContain("10.0.0.0/8");
    expect(setBody(bare, "egress_deny4")).toContain("10.130.16.0/20");
    expect(setBody(bare, "egress_deny4")).toContain("169.254.0.0/16");
    // Every other org's 6PN is in fc00::/7: no setting opens it.
    expect(setBody(bare, "egress_deny6")).toContain("fc00::/7");
    expect(setBody(bare, "egress_deny6")).not.toContain("10.0.0.0/8");
    expect(setBody(firewallRuleset(state), "egress_deny4")).toContain("203.0.113.7/32");
  });

  it("lets 6PN in from off the host only from known remote machines of the org, on their route's path", () => {
    const ruleset = firewallRuleset(state);
    expect(setBody(ruleset, "remote_6pn")).toContain("elements = { fdaa:1:2:9::1 }");
    const toMachine = body(ruleset, "chain to_machine");
    expect(toMachine).toContain("meta nfproto ipv6 fib saddr . iif oif missing drop");
    expect(toMachine).toContain("ip6 saddr @remote_6pn oifname . ip6 saddr @org_peers accept");
    expect(toMachine.indexOf("fib saddr")).toBeLessThan(toMachine.indexOf("@remote_6pn"));
  });

  it("lets forwarded IPv4 into machines only from the control sources", () => {
    const ruleset = firewallRuleset(state);
    expect(setBody(ruleset, "control_sources")).toContain("elements = { 10.127.0.1/32 }");
    const toMachine = body(ruleset, "chain to_machine");
    expect(toMachine).toContain("ip saddr @control_sources accept");
    expect(toMachine.trim().split("\n").at(-1)?.trim()).toBe("drop");
    expect(setBody(firewallRuleset({ ...state, controlSources: [] }), "control_sources")).not.toContain(
      "elements",
    );
  });

  it("refuses anything that is not an interface name, address or block, so nothing can add a rule", () => {
    const bad: Array<Partial<FirewallState>> = [
      { table: "x; flush ruleset" },
      { resolver: "fdaa::3 accept" },
      { machineCidr: "fdaa::/48" },
      { egressDeny: ["10.0.0.0/8 }"] },
      { egressDeny: ["10.0.0.0/33"] },
      { controlSources: ["10.0.0.1; accept"] },
      { remotes: ["fdaa::1 accept"] },
      { links: [{ veth: 'hv" accept', ipv4: "10.130.16.2" }] },
      { links: [{ veth: "hvx", ipv4: "10.130.16.2; accept" }] },
      { links: [{ veth: "hvx", ipv4: "10.130.16.2", sixpn: { prefix: "10.0.0.0/8", address: "fdaa::5" } }] },
    ];
    for (const change of bad) expect(() => firewallRuleset({ ...state, ...change })).toThrow(/not/);
  });
});
