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
