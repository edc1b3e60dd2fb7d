import { describe, expect, it } from "vitest";
import { type Candidate, pickBackend } from "./balancer.js";
import { ErrorScore } from "./health.js";

interface Fake extends Candidate {
  name: string;
  inFlight: number;
}

function backend(name: string, inFlight = 0, failures = 0, at = 0): Fake {
  const errors = new ErrorScore(1000);
  for (let i = 0; i < failures; i++) errors.record(at);
  return { name, inFlight, errors };
}

// Returns the given values in turn, as Math.random would.
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length] as number;
}

describe("pickBackend", () => {
  it("has nothing to pick from an empty list, and takes the only backend", () => {
    expect(pickBackend([], 0, Math.random)).toBeUndefined();
    const only = backend("a", 5, 3);
    expect(pickBackend([only], 0, Math.random)).toBe(only);
    expect(pickBackend([only], 0, Math.random, only)).toBe(only);
  });

  it("draws two distinct backends and keeps the one with fewer errors", () => {
    const list = [backend("a"), backend("b", 9, 2), backend("c", 0)];
    // First draw 0.4 -> index 1 (b); second 0.4 over the two others -> 0 (a).
    expect(pickBackend(list, 0, sequence(0.4, 0.4))?.name).toBe("a");
    // b vs c: the errors outweigh b's in-flight count either way.
    expect(pickBackend(list, 0, sequence(0.9, 0.6))?.name).toBe("c");
  });

  it("breaks ties by fewer requests in flight", () => {
    const list = [backend("a", 3), backend("b", 1), backend("c", 2)];
    expect(pickBackend(list, 0, sequence(0, 0))?.name).toBe("b"); // a vs b
    expect(pickBackend(list, 0, sequence(0.9, 0.1))?.name).toBe("c"); // c vs a
  });

  it("treats long-decayed errors as a tie", () => {
    const list = [backend("old-errors", 0, 1, 0), backend("busy", 4)];
    // One failure three half-lives ago is worth 1/8: load decides.
    expect(pickBackend(list, 3000, sequence(0, 0))?.name).toBe("old-errors");
    // The same failure just now outweighs the load.
    expect(pickBackend(list, 0, sequence(0, 0))?.name).toBe("busy");
  });

  it("never draws the backend to avoid when another exists", () => {
    const list = [backend("a"), backend("b"), backend("c"), backend("d")];
    const avoid = list[2];
    for (let i = 0; i < 200; i++) {
      const r = sequence(((i * 7) % 100) / 100, ((i * 13) % 100) / 100);
      const picked = pickBackend(list, 0, r, avoid);
      expect(picked).toBeDefined();
      expect(picked).not.toBe(avoid);
    }
    expect(pickBackend(list.slice(0, 2), 0, Math.random, list[0])?.name).toBe("b");
    expect(pickBackend(list.slice(0, 2), 0, Math.random, list[1])?.name).toBe("a");
  });

  it("spreads equal backends over all of them", () => {
    const list = [backend("a"), backend("b"), backend("c")];
    const seen = new Set<string>();
    const r = sequence(0, 0.5, 0.34, 0.1, 0.99, 0.99, 0.5, 0.99);
    for (let i = 0; i < 8; i++) seen.add(pickBackend(list, 0, r)?.name ?? "");
    expect([...seen].sort()).toEqual(["a", "b", "c"]);
  });
});

describe("pickBackend under concurrency limits", () => {
  const limits = { soft: 2, hard: 4 };

  it("sends nothing to a machine at or over its soft limit while another is under it", () => {
    const list = [backend("full", 2), backend("busy", 3), backend("free", 1)];
    for (let i = 0; i < 50; i++) {
      expect(
        pickBackend(list, 0, sequence((i % 10) / 10, ((i * 3) % 10) / 10), undefined, limits)?.name,
      ).toBe("free");
    }
  });

  it("uses machines over the soft limit but under the hard one when every machine is over soft", () => {
    const list = [backend("a", 4), backend("b", 3), backend("c", 3)];
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      seen.add(
        pickBackend(list, 0, sequence((i % 10) / 10, ((i * 7) % 10) / 10), undefined, limits)?.name ?? "",
      );
    }
    expect([...seen].sort()).toEqual(["b", "c"]);
  });

  it("has no machine when every one is at its hard limit, and any when there is no hard limit", () => {
    const list = [backend("a", 4), backend("b", 5)];
    expect(pickBackend(list, 0, Math.random, undefined, limits)).toBeUndefined();
    expect(
      pickBackend(list, 0, sequence(0, 0), undefined, { soft: 2, hard: Number.POSITIVE_INFINITY })?.name,
    ).toBe("a");
  });

  it("still avoids the failed machine among those under the limits", () => {
    const list = [backend("a", 0), backend("b", 9), backend("c", 1)];
    expect(pickBackend(list, 0, Math.random, list[0], limits)?.name).toBe("c");
    // Only the machine to avoid is under its limits: it is the one.
    expect(pickBackend(list.slice(0, 2), 0, Math.random, list[0], limits)?.name).toBe("a");
  });
});
