import type { z } from "zod";

// fly.toml [mounts] as flyctl reads it (internal/appconfig: validateMounts, ToMachineConfig): sizes are
// a whole number of GB ("10", 10) or a human size with decimal units ("1gb", "10GB", "500mb"), rounded
// down to whole GB; limits and defaults are flyctl's.

/** The size of a volume a deploy creates when its mount has no initial_size, in GB (flyctl's). */
export const DEFAULT_VOLUME_SIZE_GB = 1;

const GB = 1_000_000_000;
const UNIT_BYTES: Readonly<Record<string, number>> = { "": 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 };
const HUMAN_SIZE = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i;

/** A [mounts] size ("10", 10, "1gb", "10GB", "500mb") in whole GB, or undefined when it is not a size. */
export function parseVolumeSizeGb(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isInteger(value) ? value : undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const m = HUMAN_SIZE.exec(text);
  if (!m) return undefined;
  const bytes = Number(m[1]) * (UNIT_BYTES[(m[2] ?? "").toLowerCase()] ?? 1);
  return Math.floor(bytes / GB);
}

/** A [mounts] table as the app config schema parses it. */
export interface AppMount {
  source: string;
  destination: string;
  initial_size?: string | number | undefined;
  processes?: string[] | undefined;
  snapshot_retention?: number | undefined;
  scheduled_snapshots?: boolean | undefined;
  auto_extend_size_threshold?: number | undefined;
  auto_extend_size_increment?: string | undefined;
  auto_extend_size_limit?: string | undefined;
}

type SizeKey = "initial_size" | "auto_extend_size_increment" | "auto_extend_size_limit";
const SIZE_RANGES: Readonly<Record<SizeKey, { min: number; max: number }>> = {
  initial_size: { min: 1, max: Number.MAX_SAFE_INTEGER },
  auto_extend_size_increment: { min: 1, max: 100 },
  auto_extend_size_limit: { min: 1, max: 500 },
};

/** One problem of a [mounts] table: the key it is about, and what is wrong. */
export interface MountIssue {
  key: keyof AppMount;
  message: string;
}

/** What flyctl refuses in a [mounts] table; empty when it is valid. */
export function mountIssues(mount: AppMount): MountIssue[] {
  const issues: MountIssue[] = [];
  const sizes: Partial<Record<SizeKey, number>> = {};
  for (const key of Object.keys(SIZE_RANGES) as SizeKey[]) {
    const value = mount[key];
    if (value === undefined) continue;
    const gb = parseVolumeSizeGb(value);
    const { min, max } = SIZE_RANGES[key];
    if (gb === undefined) {
      issues.push({ key, message: 'expected a size such as "1gb", "10GB" or a number of GB' });
    } else if (gb < min || gb > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}GB` : `between ${min}GB and ${max}GB`;
      issues.push({ key, message: `expected a size ${range} (sizes are rounded down to whole GB)` });
    } else {
      sizes[key] = gb;
    }
  }
  const retention = mount.snapshot_retention;
  if (retention !== undefined && (retention < 1 || retention > 60)) {
    issues.push({ key: "snapshot_retention", message: "expected between 1 and 60 days" });
  }
  const threshold = mount.auto_extend_size_threshold;
  const autoExtend =
    threshold !== undefined ||
    mount.auto_extend_size_increment !== undefined ||
    mount.auto_extend_size_limit !== undefined;
  if (autoExtend) {
    if (threshold === undefined) {
      issues.push({
        key: "auto_extend_size_threshold",
        message: "required with the other auto_extend_size keys, expected a percentage between 50 and 99",
      });
    } else if (threshold < 50 || threshold > 99) {
      issues.push({ key: "auto_extend_size_threshold", message: "expected a percentage between 50 and 99" });
    }
    if (mount.auto_extend_size_increment === undefined) {
      issues.push({
        key: "auto_extend_size_increment",
        message: 'required with the other auto_extend_size keys, expected a size such as "1gb"',
      });
    }
    const initial = sizes.initial_size ?? DEFAULT_VOLUME_SIZE_GB;
    if (sizes.auto_extend_size_limit !== undefined && sizes.auto_extend_size_limit < initial) {
      issues.push({
        key: "auto_extend_size_limit",
        message: `expected at least the initial size (${initial}GB)`,
      });
    }
  }
  return issues;
}

/** Adds each issue of mountIssues to a zod refinement, at its key, so it is reported with its line. */
export function refineMount(mount: AppMount, ctx: z.RefinementCtx): void {
  for (const issue of mountIssues(mount)) {
    ctx.addIssue({ code: "custom", path: [issue.key], message: issue.message, input: mount[issue.key] });
  }
}

/** The volume a deploy creates for a machine with this mount: its name, size and snapshot settings. */
export interface MountVolume {
  name: string;
  size_gb: number;
  snapshot_retention?: number;
  auto_backup_enabled?: boolean;
}

/** The volume a new machine with this (valid) mount needs, as flyctl's deploy creates it. */
export function mountVolume(mount: AppMount): MountVolume {
  const size = mount.initial_size !== undefined ? parseVolumeSizeGb(mount.initial_size) : undefined;
  return {
    name: mount.source,
    size_gb: size ?? DEFAULT_VOLUME_SIZE_GB,
    ...(mount.snapshot_retention !== undefined ? { snapshot_retention: mount.snapshot_retention } : {}),
    ...(mount.scheduled_snapshots !== undefined ? { auto_backup_enabled: mount.scheduled_snapshots } : {}),
  };
}

/** A machine's mount (Fly's MachineMount) for this (valid) [mounts] table, by volume name. */
export type MachineMountFromApp = {
  name: string;
  path: string;
  extend_threshold_percent?: number;
  add_size_gb?: number;
  size_gb_limit?: number;
};

/** The machine mount flyctl's ToMachineConfig makes of a [mounts] table: name, path and auto-extend. */
export function machineMount(mount: AppMount): MachineMountFromApp {
  const gb = (value: string | undefined) => (value !== undefined ? parseVolumeSizeGb(value) : undefined);
  const add = gb(mount.auto_extend_size_increment);
  const limit = gb(mount.auto_extend_size_limit);
  return {
    name: mount.source,
    path: mount.destination,
    ...(mount.auto_extend_size_threshold !== undefined
      ? { extend_threshold_percent: mount.auto_extend_size_threshold }
      : {}),
    ...(add !== undefined ? { add_size_gb: add } : {}),
    ...(limit !== undefined ? { size_gb_limit: limit } : {}),
  };
}
