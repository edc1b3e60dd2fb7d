// What `hangar scale count` does, decided without the API: how many machines each region of a
// process group gains or loses, and which machines go. It follows flyctl's scale count
// (internal/command/scale/count_machines.go): the regions acted on are --region's, else every region
// the app has machines in, else the primary region; machines are added round-robin over them and
// removed from the last regions first; regions not acted on are left as they are.
import type { Machine } from "./types.js";

/** flyctl's group of a machine no deploy labelled (fly-go's MachineProcessGroupApp). */
export const UNLABELLED_GROUP = "app";

const GONE = new Set(["destroying", "destroyed"]);

/** The process group of a machine: its fly_process_group metadata, `app` without one. */
export function groupOf(m: Machine): string {
  return m.config?.metadata?.fly_process_group || UNLABELLED_GROUP;
}

/**
 * The machines that count: not destroyed or being destroyed, with a config, and not a release's
 * release_command or machine_checks machine (one-offs a deploy runs and removes).
 */
export function liveMachines(machines: Machine[]): Machine[] {
  return machines.filter(
    (m) =>
      m.config !== undefined &&
      !GONE.has(m.state ?? "") &&
      m.config?.metadata?.hangar_release_command === undefined &&
      m.config?.metadata?.hangar_machine_check === undefined,
  );
}

/**
 * The machines `scale count` and `scale vm` act on: live ones a deploy made (with fly_process_group),
 * as flyctl acts only on the machines its deploys made; `hangar machine run` machines are left alone.
 */
export function deployedMachines(machines: Machine[]): Machine[] {
  return liveMachines(machines).filter((m) => Boolean(m.config?.metadata?.fly_process_group));
}

/**
 * How many machines each of `regions` gains (positive) or loses (negative) so that they hold
 * `expected` in all, given `current` per region (which may name regions not acted on: those are
 * neither counted nor changed). Additions go round-robin from the first region; removals start at
 * the second region and wrap around, as flyctl's convergeGroupCounts does (the first is usually the
 * primary). Regions without a change are left out.
 */
export function convergeRegionCounts(
  expected: number,
  current: Readonly<Record<string, number>>,
  regionsIn: readonly string[],
): Record<string, number> {
  if (!Number.isInteger(expected) || expected < 0)
    throw new RangeError(`expected a count >= 0, got ${expected}`);
  const regions = [...new Set(regionsIn)];
  if (regions.length === 0) throw new RangeError("no region to scale in");
  const now = (r: string) => current[r] ?? 0;
  const diffs: Record<string, number> = {};
  let diff = expected - regions.reduce((n, r) => n + now(r), 0);
  for (let i = 0; diff > 0; i++) {
    const region = regions[i % regions.length] as string;
    diffs[region] = (diffs[region] ?? 0) + 1;
    diff--;
  }
  for (let i = 1; diff < 0; i++) {
    const region = regions[i % regions.length] as string;
    if (now(region) + (diffs[region] ?? 0) > 0) {
      diffs[region] = (diffs[region] ?? 0) - 1;
      diff++;
    }
  }
  return diffs;
}

/** One region's change of a process group. */
export interface ScaleAction {
  group: string;
  /** "" for the platform's default region (an app without machines nor primary_region). */
  region: string;
  /** Machines added (positive) or removed (negative). */
  delta: number;
  /** With a negative delta, the machines destroyed (as many as -delta). */
  destroy: Machine[];
}

/** What `scale count` is asked. */
export interface ScaleCountRequest {
  /** The app's machines, as listed (any group, any state). */
  machines: Machine[];
  group: string;
  count: number;
  /** --region, split on commas; empty or undefined: every region the app has machines in. */
  regions?: string[];
  /** Where an app without machines scales (its primary_region). */
  primaryRegion?: string;
}

/** Machines not running go first, so a scale down stops as little serving as it can. */
function destroyOrder(machines: Machine[]): Machine[] {
  const started = (m: Machine) => (m.state === "started" ? 1 : 0);
  return [...machines].sort((a, b) => started(a) - started(b));
}

/** The regions `scale count` acts on: --region's, else the app's machines', else the primary region. */
export function scaleRegions(
  req: Pick<ScaleCountRequest, "machines" | "regions" | "primaryRegion">,
): string[] {
  const asked = (req.regions ?? []).map((r) => r.trim()).filter((r) => r !== "");
  if (asked.length > 0) return [...new Set(asked)];
  const present = [...new Set(deployedMachines(req.machines).map((m) => m.region ?? ""))];
  if (present.length > 0) return present;
  return [req.primaryRegion ?? ""];
}

/** Per region, the machines the group gains or loses to have `count` in the regions acted on. */
export function planScaleCount(req: ScaleCountRequest): ScaleAction[] {
  const members = deployedMachines(req.machines).filter((m) => groupOf(m) === req.group);
  const byRegion = new Map<string, Machine[]>();
  for (const m of members) byRegion.set(m.region ?? "", [...(byRegion.get(m.region ?? "") ?? []), m]);
  const current = Object.fromEntries([...byRegion].map(([r, ms]) => [r, ms.length]));
  const diffs = convergeRegionCounts(req.count, current, scaleRegions(req));
  return Object.entries(diffs)
    .filter(([, delta]) => delta !== 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([region, delta]) => ({
      group: req.group,
      region,
      delta,
      destroy: delta < 0 ? destroyOrder(byRegion.get(region) ?? []).slice(0, -delta) : [],
    }));
}
