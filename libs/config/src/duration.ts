import { z } from "zod";

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign, as Go accepts
  μs: 1e-3, // U+03BC Greek mu, as Go accepts
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

// One "<number><unit>" term; Go allows "1.5h", ".5s" and "1.s" but not a bare "." or a missing unit.
const TERM = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/;

/** Parses a Go duration string ("10s", "1m30s", "1.5h", "-2ms", "0") into milliseconds; throws RangeError if malformed. */
export function parseDuration(text: string): number {
  let rest = text;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    sign = rest.startsWith("-") ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") throw new RangeError(`invalid duration "${text}"`);
  let total = 0;
  while (rest !== "") {
    const m = TERM.exec(rest);
    const whole = m?.[1] ?? "";
    const fraction = m?.[2] ?? "";
    if (!m || (whole === "" && fraction === "")) throw new RangeError(`invalid duration "${text}"`);
    total += Number(`${whole || "0"}.${fraction || "0"}`) * (UNIT_MS[m[3] as string] as number);
    rest = rest.slice(m[0].length);
  }
  return sign * total;
}

/** Converts a duration as Fly's API takes it (Go duration string, or a number of seconds, or a numeric string of seconds) to milliseconds. */
export function durationToMs(value: string | number): number {
  if (typeof value === "number") return value * 1000;
  return /^\d+(\.\d+)?$/.test(value) ? Number(value) * 1000 : parseDuration(value);
}

function isNonNegativeDuration(value: unknown): value is string | number {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0;
  if (typeof value !== "string") return false;
  try {
    return durationToMs(value) >= 0;
  } catch {
    return false;
  }
}

/** A non-negative duration: a Go duration string ("10s") or a number of seconds. Validated, kept as given. */
export const DurationSchema = z.custom<string | number>(isNonNegativeDuration, {
  message: 'expected a duration such as "10s" or "1m30s", or a number of seconds',
});

/** Go's time.Duration.String() of `ns` nanoseconds ("1m30s", "1.5s", "250ms", "10µs", "0s"). */
export function formatGoDuration(ns: number): string {
  let rest = Math.trunc(Math.abs(ns));
  const sign = ns < 0 ? "-" : "";
  if (rest === 0) return "0s";
  if (rest < 1e9) {
    const [unit, scale] = rest < 1e3 ? ["ns", 1] : rest < 1e6 ? ["µs", 1e3] : ["ms", 1e6];
    return `${sign}${decimal(rest, scale)}${unit}`;
  }
  const hours = Math.floor(rest / 3.6e12);
  rest -= hours * 3.6e12;
  const minutes = Math.floor(rest / 6e10);
  rest -= minutes * 6e10;
  const seconds = `${decimal(rest, 1e9)}s`;
  if (hours > 0) return `${sign}${hours}h${minutes}m${seconds}`;
  return minutes > 0 ? `${sign}${minutes}m${seconds}` : `${sign}${seconds}`;
}

/** `value / scale` written as Go writes it: the fraction's trailing zeros dropped. */
function decimal(value: number, scale: number): string {
  const whole = Math.floor(value / scale);
  const fraction = value - whole * scale;
  if (fraction === 0) return String(whole);
  const digits = String(scale).length - 1;
  return `${whole}.${String(fraction).padStart(digits, "0").replace(/0+$/, "")}`;
}
