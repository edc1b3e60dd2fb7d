import { describe, expect, it } from "vitest";
import { longestWriteGapS } from "./write-gap.js";

describe("longestWriteGapS", () => {
  it("is the longest pause between accepted writes in the window, its ends included", () => {
    expect(longestWriteGapS([1_000, 1_500, 4_000, 4_200], 0, 5_000)).toBe(2.5);
    // Writes outside the window do not count; a window without writes is one gap.
    expect(longestWriteGapS([100, 9_000], 1_000, 3_000)).toBe(2);
    // The last write to the window's end counts: writes that stopped are a gap.
    expect(longestWriteGapS([1_100, 1_200], 1_000, 6_200)).toBe(5);
    expect(longestWriteGapS([3_000, 2_000], 1_000, 4_000)).toBe(1);
  });
});
