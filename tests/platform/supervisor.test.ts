// The backoff policy of npm start's supervisor (scripts/supervisor.ts), without processes.
import { describe, expect, it } from "vitest";
import { Backoff } from "../../scripts/supervisor.js";

const policy = { initialMs: 100, factor: 2, maxMs: 1_000, resetAfterMs: 5_000 };

describe("Backoff", () => {
  it("doubles the delay with each crash in a row, up to the cap", () => {
    const backoff = new Backoff(policy);
    const delays = Array.from({ length: 7 }, () => backoff.next(10));
    expect(delays).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
  });

  it("starts over after a process ran healthy for resetAfterMs, not before", () => {
    const backoff = new Backoff(policy);
    expect([backoff.next(0), backoff.next(0), backoff.next(0)]).toEqual([100, 200, 400]);
    expect(backoff.next(4_999)).toBe(800);
    expect(backoff.next(5_000)).toBe(100);
    expect(backoff.next(0)).toBe(200);
  });
});
