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
  /** The volume it mounts, if any, and that volume's name: a machine of an in-place group keeps it. */
  volume?: string | undefined;
  volumeName?: string | undefined;
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
  /**
   * The name of the volume the group's machines mount ([mounts] source), if they mount one: a volume
   * is attached to one machine, so the group's machines on a volume of that name are updated in place
   * (flyctl's deploy of such an app) instead of replaced by new ones, and new machines come only for
   * the slots they do not fill.
   */
  inPlace?(group: string): string | undefined;
}

export type RolloutStep =
  /** Create the group's machine of slot `slot` (its id is derived from the slot: creating twice is one machine). */
  | { kind: "create"; group: string; slot: number; machineId: string }
  /** Update a machine of an in-place group to the target's config, on the volume it has. */
  | { kind: "update"; group: string; machineId: string }
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
/**
 * One in-place group's steps (see RolloutTarget.inPlace). Its machines on a volume of the mount's name
 * are updated to the target, those not serving first (updating them takes nothing away), then the
 * serving ones while no more than the batch is unavailable: `max_unavailable` for `rolling`, one
 * first for `canary`, all at once for `immediate` (`bluegreen`, which needs a second set of machines,
 * rolls as `rolling` does). Slots no such machine fills get new machines, each on a volume of its
 * own; machines beyond the count, or with no volume of that name to keep (another name: the mount's
 * source changed), go once the group is done.
 */
function planInPlace(
  target: RolloutTarget,
  group: string,
  count: number,
  volumeName: string,
  managed: RolloutMachine[],
  taken: ReadonlySet<string>,
  steps: RolloutStep[],
): { done: boolean; waiting?: string } {
  const mine = managed.filter((m) => m.group === group && m.release === target.release);
  const healthy = mine.filter((m) => m.healthy).length;
  const pending = mine.length - healthy;
  const old = managed.filter((m) => m.group === group && m.release !== target.release);
  const keepable = old.filter((m) => m.volume !== undefined && m.volumeName === volumeName);
  // Machines not serving are updated (and kept) first.
  const updatable = [...keepable.filter((m) => !m.healthy), ...keepable.filter((m) => m.healthy)].slice(
    0,
    Math.max(0, count - mine.length),
  );
  const surplus = old.filter((m) => !updatable.includes(m));
  const batch =
    target.strategy === "immediate"
      ? count
      : target.strategy === "canary" && healthy === 0
        ? 1
        : batchSize(target.maxUnavailable, count);
  const down = updatable.filter((m) => !m.healthy);
  for (const m of down) steps.push({ kind: "update", group, machineId: m.id });
  let room = Math.max(0, batch - pending - down.length);
  for (const m of updatable.filter((m) => m.healthy).slice(0, room)) {
    steps.push({ kind: "update", group, machineId: m.id });
    room--;
  }
  const creates = Math.min(room, Math.max(0, count - mine.length - updatable.length));
  for (let slot = 0, made = 0; made < creates; slot++) {
    const machineId = target.slotId(group, slot);
    if (taken.has(machineId)) continue;
    steps.push({ kind: "create", group, slot, machineId });
    made++;
  }
  if (healthy >= count) for (const m of surplus) steps.push({ kind: "destroy", machineId: m.id });
  if (healthy >= count && old.length === 0) return { done: true };
  return {
    done: false,
    ...(healthy < count
      ? { waiting: `${group}: ${healthy} of ${count} machines healthy on the new release` }
      : {}),
  };
}

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
    const volumeName = target.inPlace?.(group);
    if (volumeName !== undefined) {
      const done = planInPlace(target, group, count, volumeName, managed, taken, steps);
      if (!done.done) allDone = false;
      if (done.waiting) waiting.push(done.waiting);
      continue;
    }
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
