import { describe, expect, it } from "vitest";
import { admit, charge, tokensAt } from "./token-bucket.js";

const limit = { count: 2, periodMs: 60_000 }; // one token back every 30 s

describe("token bucket", () => {
  it("a missing bucket is full, and refill stops at the limit", () => {
    expect(tokensAt(undefined, limit, 0)).toBe(2);
    expect(tokensAt({ tokens: 0, at: 0 }, limit, 15_000)).toBe(0.5);
    expect(tokensAt({ tokens: 0, at: 0 }, limit, 10 * 60_000)).toBe(2);
  });

  it("admits a burst of the limit's count, then says when one token is back", () => {
    let state = charge(undefined, limit, 0);
    expect(admit(state, limit, 0)).toEqual({ ok: true });
    state = charge(state, limit, 0);
    expect(admit(state, limit, 0)).toEqual({ ok: false, retryAfterMs: 30_000 });
    expect(admit(state, limit, 20_000)).toEqual({ ok: false, retryAfterMs: 10_000 });
    expect(admit(state, limit, 30_000)).toEqual({ ok: true });
  });

  it("counts calls admitted but not yet charged", () => {
    expect(admit(undefined, limit, 0, 1)).toEqual({ ok: true });
    expect(admit(undefined, limit, 0, 2)).toEqual({ ok: false, retryAfterMs: 30_000 });
  });

  it("goes into debt for calls charged beyond the budget, which delays the next ones", () => {
    const state = [0, 0, 0].reduce((s) => charge(s, limit, 0), charge(undefined, limit, 0));
    expect(state.tokens).toBe(-2);
    expect(admit(state, limit, 0)).toEqual({ ok: false, retryAfterMs: 90_000 });
  });

  it("a clock that went back refills nothing", () => {
    expect(tokensAt({ tokens: 1, at: 50_000 }, limit, 40_000)).toBe(1);
  });
});
