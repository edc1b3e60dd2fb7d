import { describe, expect, it } from "vitest";
import { convergeRegionCounts, planScaleCount, scaleRegions } from "./scale-plan.js";
import type { Machine } from "./types.js";

const machine = (id: string, group: string | undefined, region: string, state = "started"): Machine => ({
  id,
  region,
  state,
  config: { image: "web:1", ...(group ? { metadata: { fly_process_group: group } } : {}) },
});

describe("convergeRegionCounts", () => {
  it("adds round-robin from the first region", () => {
    expect(convergeRegionCounts(5, { iad: 1 }, ["iad", "lhr"])).toEqual({ iad: 2, lhr: 2 });
    expect(convergeRegionCounts(3, {}, ["iad"])).toEqual({ iad: 3 });
  });

  it("removes starting at the second region, never below zero in one", () => {
    expect(convergeRegionCounts(1, { iad: 2, lhr: 1 }, ["iad", "lhr"])).toEqual({ iad: -1, lhr: -1 });
    expect(convergeRegionCounts(0, { iad: 2 }, ["iad", "lhr"])).toEqual({ iad: -2 });
  });

  it("counts and changes only the regions acted on", () => {
    expect(convergeRegionCounts(2, { local: 3 }, ["r2"])).toEqual({ r2: 2 });
    expect(convergeRegionCounts(1, { local: 3, r2: 2 }, ["r2"])).toEqual({ r2: -1 });
    expect(convergeRegionCounts(3, { local: 3, r2: 2 }, ["local"])).toEqual({});
  });

  it("refuses a negative or fractional count and no region", () => {
    expect(() => convergeRegionCounts(-1, {}, ["iad"])).toThrow(RangeError);
    expect(() => convergeRegionCounts(1.5, {}, ["iad"])).toThrow(RangeError);
    expect(() => convergeRegionCounts(1, {}, [])).toThrow(/no region/);
  });
});

describe("scaleRegions", () => {
  it("is --region's, else the regions of every machine of the app, else the primary region", () => {
    const machines = [machine("a", "web", "iad"), machine("b", "worker", "lhr"), machine("c", "web", "iad")];
    expect(scaleRegions({ machines, regions: ["ams", " ams", ""] })).toEqual(["ams"]);
    expect(scaleRegions({ machines })).toEqual(["iad", "lhr"]);
    expect(
      scaleRegions({ machines: [machine("d", "web", "iad", "destroyed")], primaryRegion: "cdg" }),
    ).toEqual(["cdg"]);
    expect(scaleRegions({ machines: [] })).toEqual([""]);
  });
});

describe("planScaleCount", () => {
  const machines = [
    machine("w1", "web", "local"),
    machine("k1", "worker", "local"),
    machine("k2", "worker", "local", "stopped"),
    machine("k3", "worker", "local"),
    machine("gone", "worker", "local", "destroyed"),
    machine("u1", undefined, "local"),
  ];

  it("adds to a group, counting only its live machines", () => {
    expect(planScaleCount({ machines, group: "web", count: 3 })).toEqual([
      { group: "web", region: "local", delta: 2, destroy: [] },
    ]);
  });

  it("removes machines that are not started first", () => {
    const [action] = planScaleCount({ machines, group: "worker", count: 1 });
    expect(action).toMatchObject({ group: "worker", region: "local", delta: -2 });
    expect(action?.destroy.map((m) => m.id)).toEqual(["k2", "k1"]);
  });

  it("does nothing when the group has the count already", () => {
    expect(planScaleCount({ machines, group: "worker", count: 3 })).toEqual([]);
  });

  it("scales one region and leaves the others", () => {
    const plan = planScaleCount({ machines, group: "worker", count: 2, regions: ["r2"] });
    expect(plan).toEqual([{ group: "worker", region: "r2", delta: 2, destroy: [] }]);
  });

  it("leaves alone machines no deploy made and release_command machines, as flyctl acts only on its deploys' machines", () => {
    // u1 has no fly_process_group (`hangar machine run`): scaling `app` to 0 destroys nothing of it.
    expect(planScaleCount({ machines, group: "app", count: 0 })).toEqual([]);
    const rc: Machine = {
      id: "rc1",
      state: "stopped",
      region: "local",
      config: { metadata: { fly_process_group: "web", hangar_release_command: "3" } },
    };
    const web = planScaleCount({ machines: [...machines, rc], group: "web", count: 0 });
    expect(web.flatMap((a) => a.destroy.map((m) => m.id))).not.toContain("rc1");
  });

  it("gives a group without machines its count in the primary region of an app without any", () => {
    expect(planScaleCount({ machines: [], group: "web", count: 2, primaryRegion: "ams" })).toEqual([
      { group: "web", region: "ams", delta: 2, destroy: [] },
    ]);
  });
});
