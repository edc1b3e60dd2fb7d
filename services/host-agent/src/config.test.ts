import { hostname } from "node:os";
import { describe, expect, it } from "vitest";
import { config, hostIdOf } from "./config.js";

describe("host agent network settings", () => {
  it("defaults to the agent's own namespace, no underlay, 172.30.0.0/16 and the private blocks denied", () => {
    const s = config.load({});
    expect(s.HANGAR_HOST_AGENT_NETNS).toBeUndefined();
    expect(s.HANGAR_HOST_AGENT_UNDERLAY_IP).toBeUndefined();
    expect(s.HANGAR_HOST_AGENT_MACHINE_CIDR).toBe("172.30.0.0/16");
    expect(s.HANGAR_HOST_AGENT_EGRESS_DENY).toEqual([]);
    expect(s.HANGAR_HOST_AGENT_CONTROL_SOURCES).toEqual([]);
  });

  it("reads a host namespace, an underlay address, a machine block and an egress list", () => {
    const s = config.load({
      HANGAR_HOST_AGENT_NETNS: "hangar-topo-3-h1",
      HANGAR_HOST_AGENT_UNDERLAY_IP: "fd00:99::1",
      HANGAR_HOST_AGENT_MACHINE_CIDR: "10.131.16.0/20",
      HANGAR_HOST_AGENT_EGRESS_DENY: " 10.0.0.0/8, fc00::/7 ,::1,",
      HANGAR_HOST_AGENT_CONTROL_SOURCES: "10.127.0.1/32, 192.0.2.7",
    });
    expect(s.HANGAR_HOST_AGENT_NETNS).toBe("hangar-topo-3-h1");
    expect(s.HANGAR_HOST_AGENT_UNDERLAY_IP).toBe("fd00:99::1");
    expect(s.HANGAR_HOST_AGENT_MACHINE_CIDR).toBe("10.131.16.0/20");
    expect(s.HANGAR_HOST_AGENT_EGRESS_DENY).toEqual(["10.0.0.0/8", "fc00::/7", "::1"]);
    expect(s.HANGAR_HOST_AGENT_CONTROL_SOURCES).toEqual(["10.127.0.1/32", "192.0.2.7"]);
  });

  it("refuses a namespace name with a path, an IPv4 underlay, an IPv6 or too small machine block, and a bad block", () => {
    for (const env of [
      { HANGAR_HOST_AGENT_NETNS: "../etc" },
      { HANGAR_HOST_AGENT_NETNS: "a/b" },
      { HANGAR_HOST_AGENT_NETNS: ".." },
      { HANGAR_HOST_AGENT_UNDERLAY_IP: "10.99.0.1" },
      { HANGAR_HOST_AGENT_MACHINE_CIDR: "fd00::/64" },
      { HANGAR_HOST_AGENT_MACHINE_CIDR: "10.0.0.0/31" },
      { HANGAR_HOST_AGENT_EGRESS_DENY: "10.0.0.0/33" },
      { HANGAR_HOST_AGENT_EGRESS_DENY: "10.0.0.0/8,example.com" },
      { HANGAR_HOST_AGENT_CONTROL_SOURCES: "fd00:99::1" },
      { HANGAR_HOST_AGENT_CONTROL_SOURCES: "10.0.0.0/33" },
    ])
      expect(() => config.load(env), JSON.stringify(env)).toThrow();
  });
});

describe("host id", () => {
  it("is HANGAR_HOST_AGENT_ID when set, else made from the node's name, else host-<hostname>", () => {
    expect(hostIdOf(config.load({ HANGAR_HOST_AGENT_ID: "h1", HANGAR_HOST_AGENT_NODE_NAME: "n.x" }))).toBe(
      "h1",
    );
    expect(hostIdOf(config.load({ HANGAR_HOST_AGENT_NODE_NAME: "ip-10-0-0-1.ec2.internal" }))).toBe(
      "ip-10-0-0-1-ec2-internal",
    );
    expect(hostIdOf(config.load({}))).toBe(`host-${hostname().replace(/[^A-Za-z0-9_-]/g, "-")}`);
  });

  it("refuses an explicit id that is not a NATS subject token", () => {
    expect(() => config.load({ HANGAR_HOST_AGENT_ID: "ip-10-0-0-1.ec2.internal" })).toThrow(/host id/);
    expect(() => config.load({ HANGAR_HOST_AGENT_ID: "a*" })).toThrow(/host id/);
  });
});
