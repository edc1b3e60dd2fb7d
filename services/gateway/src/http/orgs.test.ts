import { describe, expect, it } from "vitest";
import { iso, MAX_TOKEN_EXPIRY_MS } from "./orgs.js";

describe("iso", () => {
  it("renders any stored time without throwing, out-of-range ones at the end of a Date's range", () => {
    expect(iso(undefined)).toBeNull();
    expect(iso(0)).toBe("1970-01-01T00:00:00.000Z");
    // Expiries TokenIssued events recorded before the 20-year bound: new Date(...).toISOString() threw.
    expect(iso(2_500_000_000 * 3_600_000)).toBe("+275760-09-13T00:00:00.000Z");
    expect(iso(Number.MAX_VALUE)).toBe("+275760-09-13T00:00:00.000Z");
    expect(iso(-Number.MAX_VALUE)).toBe("-271821-04-20T00:00:00.000Z");
    expect(iso(Number.NaN)).toBeNull();
  });

  it("bounds token expiries at 20 years", () => {
    expect(MAX_TOKEN_EXPIRY_MS).toBe(175_200 * 3_600_000);
  });
});
