import { describe, expect, it } from "vitest";
import { ERROR_HALF_LIFE_MS, ErrorScore } from "./health.js";

describe("ErrorScore", () => {
  it("starts at zero and counts failures", () => {
    const s = new ErrorScore();
    expect(s.read(0)).toBe(0);
    s.record(1000);
    s.record(1000);
    expect(s.read(1000)).toBe(2);
  });

  it("halves every half-life", () => {
    const s = new ErrorScore();
    s.record(0);
    s.record(0);
    s.record(0);
    s.record(0);
    expect(s.read(ERROR_HALF_LIFE_MS)).toBeCloseTo(2, 10);
    expect(s.read(2 * ERROR_HALF_LIFE_MS)).toBeCloseTo(1, 10);
    expect(s.read(ERROR_HALF_LIFE_MS / 2)).toBeCloseTo(4 / Math.SQRT2, 10);
  });

  it("adds a new failure to the decayed score", () => {
    const s = new ErrorScore(1000);
    s.record(0);
    s.record(1000);
    expect(s.read(1000)).toBeCloseTo(1.5, 10);
    expect(s.read(2000)).toBeCloseTo(0.75, 10);
  });

  it("forgets a score once it is negligible", () => {
    const s = new ErrorScore(1000);
    s.record(0);
    expect(s.read(9000)).toBeGreaterThan(0);
    expect(s.read(11_000)).toBe(0);
  });
});
