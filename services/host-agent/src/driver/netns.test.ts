import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  claimNetnsAddress,
  hostEnd,
  isNetnsAddress,
  machineBlock,
  machineEnd,
  releaseNetnsAddress,
} from "./netns.js";

describe("network namespace addresses", () => {
  let claims: string | undefined;
  afterEach(() => {
    if (claims) rmSync(claims, { recursive: true, force: true });
  });

  it("claims a /30 per machine host-wide: never the same for two machines, the same again for one", async () => {
    claims = mkdtempSync(join(tmpdir(), "hangar-claims-"));
    const none = new Set<string>();
    const a = await claimNetnsAddress("m1", none, undefined, { claimsDir: claims });
    const b = await claimNetnsAddress("m2", none, undefined, { claimsDir: claims });
    expect(a && isNetnsAddress(a)).toBe(true);
    expect(b && isNetnsAddress(b)).toBe(true);
    expect(b).not.toBe(a);
    expect(await claimNetnsAddress("m1", none, a ?? undefined, { claimsDir: claims })).toBe(a);
    // Another machine asking for m1's address gets a different one, until m1 lets it go.
    const c = await claimNetnsAddress("m3", none, a ?? undefined, { claimsDir: claims });
    expect([a, b]).not.toContain(c);
    await releaseNetnsAddress("m1", a as string, claims);
    expect(await claimNetnsAddress("m4", none, a ?? undefined, { claimsDir: claims })).toBe(a);
    // Addresses the caller already knows to be in use are skipped.
    const d = await claimNetnsAddress("m5", new Set([a as string, b as string, c as string]), undefined, {
      claimsDir: claims,
    });
    expect([a, b, c]).not.toContain(d);
    expect(hostEnd("172.30.1.6")).toBe("172.30.1.5");
    expect(machineEnd("172.30.1.5")).toBe("172.30.1.6");
  });

  it("passes over the host's other claims to the first free address, and keeps a machine's own", async () => {
    claims = mkdtempSync(join(tmpdir(), "hangar-claims-"));
    const options = { claimsDir: claims, cidr: "10.201.0.0/16" };
    const none = new Set<string>();
    const taken: string[] = [];
    for (let i = 0; i < 300; i++) {
      const ip = await claimNetnsAddress(`other-${i}`, none, undefined, options);
      taken.push(ip as string);
    }
    expect(new Set(taken).size).toBe(300);
    expect(taken.at(-1)).toBe("10.201.4.174");
    expect(await claimNetnsAddress("m1", none, undefined, options)).toBe("10.201.4.178");
    // Its own claim, asked for again, and another machine's, asked for: the own kept, the other not.
    expect(await claimNetnsAddress("m1", none, "10.201.4.178", options)).toBe("10.201.4.178");
    expect(await claimNetnsAddress("m2", none, "10.201.0.2", options)).toBe("10.201.4.182");
  });

  it("claims from the host's machine CIDR, and says when it is full", async () => {
    claims = mkdtempSync(join(tmpdir(), "hangar-claims-"));
    const none = new Set<string>();
    const cidr = "10.200.7.0/29";
    const options = { claimsDir: claims, cidr };
    expect(await claimNetnsAddress("m1", none, undefined, options)).toBe("10.200.7.2");
    expect(await claimNetnsAddress("m2", none, undefined, options)).toBe("10.200.7.6");
    expect(await claimNetnsAddress("m3", none, undefined, options)).toBeNull();
    expect(isNetnsAddress("10.200.7.6", cidr)).toBe(true);
    expect(isNetnsAddress("10.200.7.10", cidr)).toBe(false);
  });

  it("refuses a machine CIDR that is not an IPv4 block of /30 or larger", () => {
    expect(machineBlock("10.1.2.3/20")).toEqual({ base: (10 * 256 + 1) * 65536, subnets: 1024 });
    for (const bad of ["10.0.0.0/31", "fd00::/64", "10.0.0.0", "10.0.0.0/x"]) {
      expect(() => machineBlock(bad)).toThrow(/IPv4 block/);
    }
  });

  it("tells namespace addresses from loopback ones", () => {
    expect(isNetnsAddress("172.30.4.10")).toBe(true);
    expect(isNetnsAddress("172.30.4.9")).toBe(false);
    expect(isNetnsAddress("127.77.0.1")).toBe(false);
  });
});
