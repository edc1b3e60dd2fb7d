import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { claimNetnsAddress, hostEnd, isNetnsAddress, releaseNetnsAddress } from "./netns.js";

describe("network namespace addresses", () => {
  let claims: string | undefined;
  afterEach(() => {
    if (claims) rmSync(claims, { recursive: true, force: true });
  });

  it("claims a /30 per machine host-wide: never the same for two machines, the same again for one", async () => {
    claims = mkdtempSync(join(tmpdir(), "hangar-claims-"));
    const none = new Set<string>();
    const a = await claimNetnsAddress("m1", none, undefined, claims);
    const b = await claimNetnsAddress("m2", none, undefined, claims);
    expect(a && isNetnsAddress(a)).toBe(true);
    expect(b && isNetnsAddress(b)).toBe(true);
    expect(b).not.toBe(a);
    expect(await claimNetnsAddress("m1", none, a ?? undefined, claims)).toBe(a);
    // Another machine asking for m1's address gets a different one, until m1 lets it go.
    const c = await claimNetnsAddress("m3", none, a ?? undefined, claims);
    expect([a, b]).not.toContain(c);
    await releaseNetnsAddress("m1", a as string, claims);
    expect(await claimNetnsAddress("m4", none, a ?? undefined, claims)).toBe(a);
    // Addresses the caller already knows to be in use are skipped.
    const d = await claimNetnsAddress(
      "m5",
      new Set([a as string, b as string, c as string]),
      undefined,
      claims,
    );
    expect([a, b, c]).not.toContain(d);
    expect(hostEnd("172.30.1.6")).toBe("172.30.1.5");
  });

  it("tells namespace addresses from loopback ones", () => {
    expect(isNetnsAddress("172.30.4.10")).toBe(true);
    expect(isNetnsAddress("172.30.4.9")).toBe(false);
    expect(isNetnsAddress("127.77.0.1")).toBe(false);
  });
});
