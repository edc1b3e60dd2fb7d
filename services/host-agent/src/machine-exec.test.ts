import { describe, expect, it } from "vitest";
import { boundedReply } from "./machine-exec.js";

const reply = (stdout: string, stderr = "") => ({ stdout, stderr, exit_code: 0, exit_signal: 0 });
const size = (r: object) => new TextEncoder().encode(JSON.stringify(r)).length;

describe("boundedReply", () => {
  it("leaves output that fits as it is", () => {
    expect(boundedReply(reply("hello\n", "warn\n"), 1024)).toEqual(reply("hello\n", "warn\n"));
  });

  it("cuts a large stdout to what fits, says how much was left out, and keeps a small stderr whole", () => {
    const cut = boundedReply(reply("x".repeat(10_000), "oops\n"), 2_000);
    expect(size(cut)).toBeLessThanOrEqual(2_000);
    expect(cut.stderr).toBe("oops\n");
    expect(cut.stdout).toMatch(/^x+\n\[hangar: output truncated, at least \d+ more bytes\]\n$/);
  });

  it("shares the room between two large streams and fits output that JSON escapes heavily", () => {
    const both = boundedReply(reply("a".repeat(5_000), "b".repeat(5_000)), 2_000);
    expect(size(both)).toBeLessThanOrEqual(2_000);
    expect(both.stdout.startsWith("a".repeat(400))).toBe(true);
    expect(both.stderr.startsWith("b".repeat(400))).toBe(true);
    // Every control byte becomes six in JSON (\u0001).
    const binary = boundedReply(reply("\u0001".repeat(5_000)), 2_000);
    expect(size(binary)).toBeLessThanOrEqual(2_000);
    expect(binary.stdout).toContain("output truncated");
  });

  it("never cuts a character in half", () => {
    const cut = boundedReply(reply("é".repeat(2_000)), 1_001);
    expect(cut.stdout).not.toContain("\uFFFD");
  });
});
