import { describe, expect, it } from "vitest";
import { parseDuration } from "./duration.js";
import { InvalidDurationError } from "./errors.js";

describe("parseDuration", () => {
  it.each([
    ["10s", 10_000],
    ["500ms", 500],
    ["1m", 60_000],
    ["1m30s", 90_000],
    ["1.5h", 5_400_000],
    ["2h45m", 9_900_000],
    ["250us", 0.25],
    ["250µs", 0.25],
    ["1000000ns", 1],
    [".5s", 500],
    ["0", 0],
    ["-2s", -2_000],
  ])("reads %s as %d ms", (input, ms) => {
    expect(parseDuration(input)).toBeCloseTo(ms, 9);
  });

  it.each(["", "10", "s", "10x", "1s ", " 1s", "1.2.3s", "--1s", "1d"])("rejects %j", (input) => {
    expect(() => parseDuration(input)).toThrow(InvalidDurationError);
  });

  it("names the input and carries the error code", () => {
    try {
      parseDuration("ten seconds");
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: "INVALID_DURATION", input: "ten seconds" });
    }
  });
});
