import { describe, expect, it } from "vitest";
import { idleMs } from "./idle.js";

describe("idleMs", () => {
  it("is the idle_timeout in ms, at most what node's timers keep (a larger one would be cut to it, with a warning each time)", () => {
    expect(idleMs(1)).toBe(1000);
    expect(idleMs(600)).toBe(600_000);
    expect(idleMs(2_147_483)).toBe(2_147_483_000);
    expect(idleMs(0xffff_ffff)).toBe(2 ** 31 - 1);
  });
});
