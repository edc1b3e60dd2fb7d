import { describe, expect, it } from "vitest";
import { batchSize, planRollout, type RolloutMachine, type RolloutTarget } from "./rollout.js";

const target = (strategy: RolloutTarget["strategy"], count = 4, maxUnavailable = ""): RolloutTarget => ({
  release: 2,
  groups: [{ group: "app", count }],
  strategy,
  maxUnavailable,
  slotId: (group, slot) => `${group}-v2-${slot}`,
});
const old = (n: number): RolloutMachine[] =>
  Array.from({ length: n }, (_, i) => ({ id: `old${i}`, group: "app", release: 1, healthy: true }));
const fresh = (slots: number[], healthy: boolean): RolloutMachine[] =>
  slots.map((i) => ({ id: `app-v2-${i}`, group: "app", release: 2, healthy }));
const taken = (ms: RolloutMachine[]) => new Set(ms.map((m) => m.id));

function steps(t: RolloutTarget, ms: RolloutMachine[]) {
  const d = planRollout(t, ms, taken(ms));
  if (d.kind !== "act") return d.kind;
  return d.steps.map((s) =>
    s.kind === "create" ? `+${s.machineId}` : s.kind === "update" ? `~${s.machineId}` : `-${s.machineId}`,
  );
}

describe("planRollout", () => {
  it("sizes a rolling batch as flyctl does: a count, or the fraction of the group rounded up", () => {
    expect(batchSize("", 10)).toBe(4);
    expect(batchSize("0.33", 10)).toBe(4);
    expect(batchSize("0.1", 4)).toBe(1);
    expect(batchSize("2", 10)).toBe(2);
    expect(batchSize("1", 10)).toBe(1);
  });

  it("rolls a batch at a time, an old machine going per new healthy one", () => {
    const t = target("rolling", 4, "2");
    expect(steps(t, old(4))).toEqual(["+app-v2-0", "+app-v2-1"]);
    // Waiting on two unhealthy new machines: nothing more is created, nothing goes.
    expect(steps(t, [...old(4), ...fresh([0, 1], false)])).toEqual([]);
    // One is healthy: one old machine goes and one more new one starts.
    expect(steps(t, [...old(4), ...fresh([0], true), ...fresh([1], false)])).toEqual(["+app-v2-2", "-old0"]);
    expect(steps(t, fresh([0, 1, 2, 3], true))).toBe("done");
  });

  it("starts a canary alone, then rolls the rest", () => {
    const t = target("canary", 4, "2");
    expect(steps(t, old(4))).toEqual(["+app-v2-0"]);
    expect(steps(t, [...old(4), ...fresh([0], false)])).toEqual([]);
    expect(steps(t, [...old(4), ...fresh([0], true)])).toEqual(["+app-v2-1", "+app-v2-2", "-old0"]);
  });

  it("bluegreen and immediate create every new machine and let the old go only when all are healthy", () => {
    for (const s of ["bluegreen", "immediate"] as const) {
      const t = target(s);
      expect(steps(t, old(4))).toEqual(["+app-v2-0", "+app-v2-1", "+app-v2-2", "+app-v2-3"]);
      expect(steps(t, [...old(4), ...fresh([0, 1, 2], true), ...fresh([3], false)])).toEqual([]);
      expect(steps(t, [...old(4), ...fresh([0, 1, 2, 3], true)])).toEqual([
        "-old0",
        "-old1",
        "-old2",
        "-old3",
      ]);
    }
  });

  it("stops at a new machine that fails, creating and destroying nothing", () => {
    const ms = [
      ...old(4),
      { id: "app-v2-0", group: "app", release: 2, healthy: false, failure: "check web failed" },
    ];
    expect(planRollout(target("rolling"), ms, taken(ms))).toEqual({
      kind: "fail",
      reason: "check web failed",
    });
  });

  it("skips a slot whose id was used by a machine since destroyed, leaves unmanaged machines alone, and removes groups the release dropped", () => {
    const t = target("immediate", 1);
    const ms: RolloutMachine[] = [
      { id: "adhoc", group: undefined, release: 0, healthy: true },
      { id: "w1", group: "worker", release: 1, healthy: true },
    ];
    const d = planRollout(t, ms, new Set([...taken(ms), "app-v2-0"]));
    expect(d).toMatchObject({ kind: "act", steps: [{ kind: "create", machineId: "app-v2-1" }] });
    const after = [...ms, ...fresh([1], true)];
    expect(steps(t, after)).toEqual(["-w1"]);
    expect(planRollout(t, [ms[0] as RolloutMachine, ...fresh([1], true)], taken(after))).toEqual({
      kind: "done",
      machineIds: ["app-v2-1"],
    });
  });

  describe("a group on volumes ([mounts]): its machines are updated in place", () => {
    const onVolumes = (t: RolloutTarget): RolloutTarget => ({
      ...t,
      inPlace: (g) => (g === "app" ? "data" : undefined),
    });
    const vols = (n: number, release = 1, healthy = true): RolloutMachine[] =>
      Array.from({ length: n }, (_, i) => ({
        id: `m${i}`,
        group: "app",
        release,
        healthy,
        volume: `vol_${i}`,
        volumeName: "data",
      }));
    const updated = (ms: RolloutMachine[], ids: string[], healthy: boolean) =>
      ms.map((m) => (ids.includes(m.id) ? { ...m, release: 2, healthy } : m));

    it("rolling: a batch at a time, never creating a machine or destroying one that has a volume", () => {
      const t = onVolumes(target("rolling", 4, "2"));
      expect(steps(t, vols(4))).toEqual(["~m0", "~m1"]);
      expect(steps(t, updated(vols(4), ["m0", "m1"], false))).toEqual([]);
      expect(steps(t, updated(updated(vols(4), ["m0"], true), ["m1"], false))).toEqual(["~m2"]);
      expect(steps(t, updated(vols(4), ["m0", "m1", "m2", "m3"], true))).toBe("done");
    });

    it("immediate updates all at once; canary one first; bluegreen rolls (there is no second set of volumes)", () => {
      expect(steps(onVolumes(target("immediate", 3)), vols(3))).toEqual(["~m0", "~m1", "~m2"]);
      const canary = onVolumes(target("canary", 4, "2"));
      expect(steps(canary, vols(4))).toEqual(["~m0"]);
      expect(steps(canary, updated(vols(4), ["m0"], false))).toEqual([]);
      expect(steps(canary, updated(vols(4), ["m0"], true))).toEqual(["~m1", "~m2"]);
      expect(steps(onVolumes(target("bluegreen", 4, "2")), vols(4))).toEqual(["~m0", "~m1"]);
    });

    it("creates machines for the slots its volumes do not fill (a first deploy), and removes the surplus once done", () => {
      const t = onVolumes(target("rolling", 2, "2"));
      expect(steps(t, [])).toEqual(["+app-v2-0", "+app-v2-1"]);
      expect(steps(t, vols(1))).toEqual(["~m0", "+app-v2-0"]);
      // A machine with no volume (the group mounts one now) cannot be updated onto one: it is replaced.
      const bare: RolloutMachine = { id: "bare", group: "app", release: 1, healthy: true };
      expect(steps(t, [...vols(1), bare])).toEqual(["~m0", "+app-v2-0"]);
      expect(steps(t, [...updated(vols(1), ["m0"], true), ...fresh([0], true), bare])).toEqual(["-bare"]);
      const shrink = onVolumes(target("rolling", 1, "1"));
      expect(steps(shrink, vols(2))).toEqual(["~m0"]);
      expect(steps(shrink, updated(vols(2), ["m0"], true))).toEqual(["-m1"]);
    });

    it("updates a machine that is not serving first, and a serving one only within the batch", () => {
      const t = onVolumes(target("rolling", 2));
      const ms = vols(2).map((m) => (m.id === "m1" ? { ...m, healthy: false } : m));
      // The batch is one machine: m1 (down) is it; m0 keeps serving until m1 is healthy again.
      expect(steps(t, ms)).toEqual(["~m1"]);
      expect(steps(t, updated(ms, ["m1"], false))).toEqual([]);
      expect(steps(t, updated(ms, ["m1"], true))).toEqual(["~m0"]);
    });

    it("replaces a machine whose volume has another name (the mount's source changed)", () => {
      const t = onVolumes(target("rolling", 1, "1"));
      const other: RolloutMachine = { ...(vols(1)[0] as RolloutMachine), volumeName: "old-data" };
      expect(steps(t, [other])).toEqual(["+app-v2-0"]);
      expect(steps(t, [other, ...fresh([0], true)])).toEqual(["-m0"]);
    });

    it("stops at a machine whose update fails: the rollout fails", () => {
      const ms = updated(vols(2), ["m0"], false).map((m) =>
        m.id === "m0" ? { ...m, failure: "machine m0 failed" } : m,
      );
      expect(planRollout(onVolumes(target("rolling", 2)), ms, taken(ms))).toEqual({
        kind: "fail",
        reason: "machine m0 failed",
      });
    });
  });
});
