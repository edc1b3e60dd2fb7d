import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  formatIpv6,
  inOrgNetwork,
  machineAddress,
  netOfAddress,
  orgNetCandidate,
  orgNetwork,
  parseIpv6,
  sixpnSpec,
} from "./sixpn.js";

describe("6PN addressing", () => {
  it("derives an org's candidates from sha256(slug:attempt), each different", () => {
    const first = createHash("sha256").update("acme:0").digest().subarray(0, 4).toString("hex");
    expect(orgNetCandidate("acme", 0)).toBe(first);
    expect(orgNetCandidate("acme", 1)).not.toBe(first);
    expect(orgNetCandidate("other", 0)).not.toBe(first);
  });

  it("writes an org's prefix as a canonical fdaa /48", () => {
    expect(orgNetwork("acme", "0012abcd").prefix).toBe("fdaa:12:abcd::/48");
    expect(orgNetwork("acme", "00000000").prefix).toBe("fdaa::/48");
    expect(orgNetwork("acme", "ffff0001").prefix).toBe("fdaa:ffff:1::/48");
  });

  it("refuses a net that is not 8 lowercase hex digits", () => {
    for (const net of ["12ab", "0012ABCD", "0012abcg", "0012abcd0"])
      expect(() => orgNetwork("acme", net)).toThrow(/8 lowercase hex digits/);
  });

  it("puts a machine inside its org's /48, from the low 80 bits of sha256(machine id)", () => {
    const net = orgNetwork("acme", "0012abcd");
    const address = machineAddress(net, "d8d9e3f1c2a7e8");
    const hash = createHash("sha256").update("d8d9e3f1c2a7e8").digest().subarray(0, 10).toString("hex");
    expect(parseIpv6(address)).toBe((0xfdaa0012abcdn << 80n) | BigInt(`0x${hash}`));
    expect(inOrgNetwork(net, address)).toBe(true);
    expect(inOrgNetwork(orgNetwork("other", "0012abce"), address)).toBe(false);
    expect(machineAddress(net, "d8d9e3f1c2a7e8")).toBe(address);
    expect(machineAddress(net, "another")).not.toBe(address);
    expect(sixpnSpec(net, "d8d9e3f1c2a7e8")).toEqual({ org: "acme", prefix: "fdaa:12:abcd::/48", address });
  });

  it("tells the net of a 6PN address, and none for others", () => {
    const net = orgNetwork("acme", "0012abcd");
    expect(netOfAddress(machineAddress(net, "m1"))).toBe("0012abcd");
    expect(netOfAddress("fdab:12:abcd::5")).toBeUndefined();
    expect(netOfAddress("10.0.0.1")).toBeUndefined();
    expect(netOfAddress("not an address")).toBeUndefined();
  });

  it("parses and formats IPv6 both ways, compressed as RFC 5952 says", () => {
    for (const [text, canonical] of [
      ["FDAA:0000:0012:0000:0000:0000:0000:0001", "fdaa:0:12::1"],
      ["::", "::"],
      ["::1", "::1"],
      ["fe80::", "fe80::"],
      ["1:0:0:1:0:0:0:1", "1:0:0:1::1"],
      ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ] as const) {
      const value = parseIpv6(text);
      expect(value, text).toBeDefined();
      expect(formatIpv6(value ?? 0n)).toBe(canonical);
    }
    expect(parseIpv6("::ffff:10.0.0.1")).toBeUndefined();
    expect(parseIpv6("fe80::1%eth0")).toBeUndefined();
    expect(parseIpv6("10.0.0.1")).toBeUndefined();
  });
});
