import { describe, expect, it } from "vitest";
import { buildFirewallRuleset, buildSubnets, resolvConfNameservers } from "./build-firewall.js";
import { stepNetwork } from "./step-network.js";

const link = {
  table: "hangar_build_0123456789ab",
  veth: "hb0123456789ab",
  address: "172.29.0.2",
  cidr: "172.29.0.0/16",
  nameservers: ["10.255.255.53"],
};

describe("a build network's firewall", () => {
  it("drops everything from the build to the host, lets out public addresses and the nameservers' port 53 only", () => {
    const rules = buildFirewallRuleset(link);
    expect(rules).toContain('iifname "hb0123456789ab" drop');
    expect(rules).toContain("ip daddr 10.255.255.53 udp dport 53 accept");
    // Private blocks (machines, 6PN's IPv4 neighbours, the control plane) and other builds.
    expect(rules).toMatch(/elements = \{ [^}]*10\.0\.0\.0\/8[^}]*172\.29\.0\.0\/16 \}/);
    expect(rules.indexOf("udp dport 53 accept")).toBeLessThan(rules.indexOf("ip daddr @egress_deny4 drop"));
    expect(rules).toContain('ip saddr 172.29.0.2 oifname != "hb0123456789ab" masquerade');
    // Nothing from outside starts a connection into the build.
    expect(rules).toMatch(/chain to_build \{\n\s+ct state established,related accept\n\s+drop/);
  });

  it("refuses a value that could add a rule", () => {
    expect(() => buildFirewallRuleset({ ...link, veth: 'hb" accept;' })).toThrow(/interface name/);
    expect(() => buildFirewallRuleset({ ...link, nameservers: ["1.1.1.1; accept"] })).toThrow(/nameserver/);
  });

  it("reads the IPv4 nameservers of a resolv.conf", () => {
    expect(
      resolvConfNameservers("# x\nnameserver 127.0.0.53\nnameserver ::1\n nameserver 9.9.9.9\n"),
    ).toEqual(["127.0.0.53", "9.9.9.9"]);
  });

  it("cuts the block into /30s: host end .1, build .2", () => {
    const subnets = buildSubnets("172.29.0.0/16");
    expect(subnets).toHaveLength(16384);
    expect(subnets[1]).toEqual({ host: "172.29.0.5", build: "172.29.0.6" });
    expect(() => buildSubnets("172.29.0.0/8")).toThrow(/between \/16 and \/30/);
  });
});

describe("a RUN step's network", () => {
  const at = { line: 3, instruction: "RUN --network=default npm ci" };
  it("is what the step asked, on by default", () => {
    expect(stepNetwork(undefined, "default", at)).toBe("default");
    expect(stepNetwork("none", "default", at)).toBe("none");
  });
  it("is none under HANGAR_BUILDER_NETWORK=none, and asking for it by name fails naming the setting", () => {
    expect(stepNetwork(undefined, "none", at)).toBe("none");
    expect(() => stepNetwork("default", "none", at)).toThrow(/line 3: .*HANGAR_BUILDER_NETWORK=none/);
  });
});
