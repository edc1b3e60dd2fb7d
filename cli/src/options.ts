import { InvalidArgumentError, Option } from "commander";
import { parseEnvPair } from "./machine-request.js";
import type { RestartPolicy } from "./types.js";

const UNIT_SECONDS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** A positive whole number, for commander. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive whole number");
  return n;
}

/** A TCP port number, for commander. */
export function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65_535) throw new InvalidArgumentError("expected a port, 1-65535");
  return n;
}

/** A Go duration ("30s", "1m30s", "500ms") or a number of seconds, normalized to a Go duration string. */
export function goDuration(value: string): string {
  if (/^\d+$/.test(value)) return `${value}s`;
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(value)) {
    throw new InvalidArgumentError('expected a duration such as "30s", "2m" or a number of seconds');
  }
  return value;
}

/** The length of a Go duration string in seconds. */
export function durationSeconds(duration: string): number {
  let total = 0;
  for (const [, amount, unit] of duration.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(amount) * (UNIT_SECONDS[unit as string] ?? 0);
  }
  return total;
}

/** A duration for commander, in whole seconds (at least 1). */
export function seconds(value: string): number {
  return Math.max(1, Math.ceil(durationSeconds(goDuration(value))));
}

/** Collects repeated `-e KEY=VALUE` options into one object. */
export function envPair(value: string, previous: Record<string, string> = {}): Record<string, string> {
  try {
    const [key, val] = parseEnvPair(value);
    return { ...previous, [key]: val };
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** A restart policy, for commander. */
export function restartPolicy(value: string): RestartPolicy {
  if (value === "no" || value === "always" || value === "on-failure") return value;
  throw new InvalidArgumentError("expected no, always or on-failure");
}

/** `--wait-timeout <duration>`, in seconds, with its default shown as a duration in the help. */
export function waitTimeoutOption(defaultSeconds: number, shown: string, what: string): Option {
  return new Option("--wait-timeout <duration>", `how long to wait for ${what}`)
    .argParser(seconds)
    .default(defaultSeconds, shown);
}
