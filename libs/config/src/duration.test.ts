import { describe, expect, it } from "vitest";
import { DurationSchema, durationToMs, formatGoDuration, parseDuration } from "./duration.js";

describe("parseDuration", () => {
  it.each([
    ["10s", 10_000],
    ["1m30s", 90_000],
    ["1h2m3s4ms", 3_723_004],
    ["1.5h", 5_400_000],
    [".5s", 500],
    ["1.s", 1000],
    ["300ms", 300],
    ["1500us", 1.5],
    ["1500µs", 1.5],
    ["2000000ns", 2],
    ["-2s", -2000],
    ["+3m", 180_000],
    ["0", 0],
  ])("parses %s", (text, ms) => {
    expect(parseDuration(text)).toBeCloseTo(ms, 9);
  });

  it.each(["", "10", "s", "1x", "1.2.3s", "1m 30s", ".s", "-", "10S"])("rejects %j", (text) => {
    expect(() => parseDuration(text)).toThrow(RangeError);
  });
});

describe("durationToMs", () => {
  it("reads numbers and numeric strings as seconds, other strings as Go durations", () => {
    expect(durationToMs(30)).toBe(30_000);
    expect(durationToMs(0.25)).toBe(250);
    expect(durationToMs("30")).toBe(30_000);
    expect(durationToMs("2.5")).toBe(2500);
    expect(durationToMs("30ms")).toBe(30);
  });
});

describe("DurationSchema", () => {
  it("keeps valid values as given and rejects negative or malformed ones", () => {
    expect(DurationSchema.parse("1m")).toBe("1m");
    expect(DurationSchema.parse(5)).toBe(5);
    for (const bad of ["-1s", -1, "soon", Number.POSITIVE_INFINITY, true, null]) {
      expect(DurationSchema.safeParse(bad).success).toBe(false);
    }
  });
});

describe("formatGoDuration", () => {
  it.each([
    [0, "0s"],
    [10_000_000_000, "10s"],
    [1_500_000_000, "1.5s"],
    [90_000_000_000, "1m30s"],
    [3_600_000_000_000, "1h0m0s"],
    [250_000_000, "250ms"],
    [10_000, "10µs"],
    [7, "7ns"],
    [-2_000_000_000, "-2s"],
  ])("writes %d ns as Go does: %s", (ns, text) => {
    expect(formatGoDuration(ns)).toBe(text);
    if (ns >= 1000) expect(parseDuration(text) * 1e6).toBeCloseTo(ns, 3);
  });
});
