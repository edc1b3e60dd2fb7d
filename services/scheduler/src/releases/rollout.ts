import type { ReleaseGroup, ReleaseStrategy } from "@hangar/domain";

/** flyctl's default max_unavailable: a third of each group at a time. */
export const DEFAULT_MAX_UNAVAILABLE = 0.33;

/** A machine of the app as a rollout sees it. */
export interface RolloutMachine {
  id: string;
  /** Its fly_process_group; undefined for a machine no deploy made (`machine run`): left alone. */
  group: string | undefined;
  /** Its hangar_release (0 when it has none). */
  release: number;
  /** Started with every check passing. */
  healthy: boolean;
  /** Why it will not become healthy by waiting (failed, destroyed, past its wait timeout), if so. */
  failure?: string | undefined;
  region?: string;
}

/** What a rollout converges the app to: a release's machines, so many per process group. */
export interface RolloutTarget {
  release: number;
  groups: ReleaseGroup[];
  strategy: ReleaseStrategy;
  /** A count ("2") or a fraction of each group ("0.33"); "" for flyctl's default. */
  maxUnavailable: string;
  /** The machine id of a group's slot: the same for every attempt, so creating twice is one machine. */
  slotId(group: string, slot: number): string;
}

export type RolloutStep =
  /** Create the group's machine of slot `slot` (its id is derived from the slot: creating twice is one machine). */
  | { kind: "create"; group: string; slot: number; machineId: string }
  /** Drain then destroy a machine the target does not keep. */
  | { kind: "destroy"; machineId: string };

export type RolloutDecision =
  | { kind: "act"; steps: RolloutStep[]; waiting: string }
  | { kind: "done"; machineIds: string[] }
  | { kind: "fail"; reason: string };

/** How many machines of a group of `count` a rolling step replaces at once (flyctl's pool size). */
export function batchSize(maxUnavailable: string, count: number): number {
  const mu = maxUnavailable === "" ? DEFAULT_MAX_UNAVAILABLE : Number(maxUnavailable);
  if (!Number.isFinite(mu) || mu <= 0) return 1;
  if (mu >= 1) return Math.floor(mu);
  return Math.max(1, Math.ceil(count * mu));
}

/**
 * The next steps that bring the app's machines to the target, from what they are now. It keeps no
 * state of its own, so a restarted orchestrator goes on from the machines it finds:
 * - new machines are created first, and an old machine goes only once a new one is healthy, so a
 *   group never serves with fewer healthy machines than it had (requests are not lost to a deploy);
 * - `rolling` creates at most a batch (max_unavailable) not yet healthy at a time and lets one old
 *   machine go per new healthy one; `canary` first creates one machine and waits until it is healthy,
 *   then rolls the rest; `immediate` and `bluegreen` create every new machine at once and let the old
 *   ones go only when all the new ones are healthy (bluegreen's switch);
 * - a new machine that fails stops the rollout (`fail`): nothing more is created or destroyed;
 * - machines of groups the target does not have go once every group is done.
 */
export function planRollout(
  target: RolloutTarget,
  machines: RolloutMachine[],
  /** Every machine id the app ever had (destroyed ones too): a slot whose id is taken is skipped. */
  taken: ReadonlySet<string>,
): RolloutDecision {
  const managed = machines.filter((m) => m.group !== undefined);
  const fresh = managed.filter((m) => m.release === target.release);
  const failed = fresh.find((m) => m.failure !== undefined);
  if (failed) return { kind: "fail", reason: failed.failure as string };

  const steps: RolloutStep[] = [];
  const waiting: string[] = [];
  let allDone = true;
  for (const { group, count } of target.groups) {
    const mine = fresh.filter((m) => m.group === group);
    const healthy = mine.filter((m) => m.healthy).length;
    const pending = mine.length - healthy;
    const old = managed.filter((m) => m.group === group && m.release !== target.release);
    let batch = 1;
    switch (target.strategy) {
      case "immediate":
      case "bluegreen":
        batch = count;
        break;
      case "canary":
        batch = healthy === 0 ? 1 : batchSize(target.maxUnavailable, count);
        break;
      case "rolling":
        batch = batchSize(target.maxUnavailable, count);
        break;
    }
    const creates = Math.max(0, Math.min(batch - pending, count - mine.length));
    for (let slot = 0, made = 0; made < creates; slot++) {
      const machineId = target.slotId(group, slot);
      if (taken.has(machineId)) continue;
      steps.push({ kind: "create", group, slot, machineId });
      made++;
    }
    // Old machines go as new ones are healthy: all at once for immediate and bluegreen, once all are.
    const keepOld =
      target.strategy === "immediate" || target.strategy === "bluegreen"
        ? healthy >= count
          ? 0
          : old.length
        : Math.max(0, count - healthy);
    for (const m of old.slice(0, Math.max(0, old.length - keepOld)))
      steps.push({ kind: "destroy", machineId: m.id });
    if (healthy < count || old.length > 0) allDone = false;
    if (healthy < count) waiting.push(`${group}: ${healthy} of ${count} new machines healthy`);
  }
  const groups = new Set(target.groups.map((g) => g.group));
  const strays = managed.filter((m) => !groups.has(m.group as string));
  if (allDone && strays.length === 0)
    return { kind: "done", machineIds: fresh.filter((m) => m.healthy).map((m) => m.id) };
  if (allDone) for (const m of strays) steps.push({ kind: "destroy", machineId: m.id });
  return { kind: "act", steps, waiting: waiting.join("; ") || "removing the previous machines" };
}
