import { describe, expect, it } from "vitest";
import { ulid } from "./request-id.js";

describe("ulid", () => {
  it("is 26 Crockford base32 characters", () => {
    expect(ulid()).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
  });

  it("encodes the time in the first ten characters, so ids sort by time", () => {
    expect(ulid(0).slice(0, 10)).toBe("0000000000");
    expect(ulid(1469918176385).slice(0, 10)).toBe("01ARYZ6S41"); // the ULID spec's example
    expect(ulid(1000) < ulid(2000)).toBe(true);
  });

  it("does not repeat", () => {
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) ids.add(ulid(1));
    expect(ids.size).toBe(10_000);
  });
});
