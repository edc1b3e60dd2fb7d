import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import { durationSeconds, envPair, goDuration, seconds } from "./options.js";

describe("durations", () => {
  it("normalizes to Go duration strings", () => {
    expect(goDuration("30")).toBe("30s");
    expect(goDuration("1m30s")).toBe("1m30s");
    expect(() => goDuration("30 seconds")).toThrow(InvalidArgumentError);
  });

  it("converts Go durations to seconds", () => {
    expect(durationSeconds("1h2m3s")).toBe(3723);
    expect(durationSeconds("1500ms")).toBe(1.5);
    expect(seconds("1500ms")).toBe(2);
    expect(seconds("5m")).toBe(300);
  });
});

describe("envPair", () => {
  it("collects repeated options", () => {
    expect(envPair("B=2", envPair("A=1"))).toEqual({ A: "1", B: "2" });
    expect(() => envPair("oops")).toThrow(InvalidArgumentError);
  });
});
