import { describe, expect, it } from "vitest";
import { pollUntil } from "./poll.js";

describe("pollUntil", () => {
  it("resolves true as soon as the condition holds, without long sleeps", async () => {
    let calls = 0;
    const started = performance.now();
    expect(await pollUntil(() => ++calls >= 4, 1_000)).toBe(true);
    expect(calls).toBe(4);
    // Checks at once, then after 1 and 2 ms: a poller with 100 ms sleeps would take 300 ms.
    expect(performance.now() - started).toBeLessThan(200);
  });

  it("resolves false once the timeout has passed", async () => {
    const started = performance.now();
    expect(await pollUntil(() => false, 50)).toBe(false);
    expect(performance.now() - started).toBeGreaterThanOrEqual(49);
  });
});
