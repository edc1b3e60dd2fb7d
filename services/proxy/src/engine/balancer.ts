import type { ErrorScore } from "./health.js";

/** What the balancer needs to know about a backend. */
export interface Candidate {
  readonly errors: ErrorScore;
  /** Its concurrency: requests and upgraded connections in flight on it through this proxy. */
  readonly inFlight: number;
}

/** A machine's concurrency limits; `hard` is Infinity when there is none. */
export interface Limits {
  readonly soft: number;
  readonly hard: number;
}

/** No limits: every backend is a candidate. */
export const NO_LIMITS: Limits = Object.freeze({
  soft: Number.POSITIVE_INFINITY,
  hard: Number.POSITIVE_INFINITY,
});

// Scores closer than half a fresh failure count as equal, so a long-decayed blip does not
// outweigh load.
const SCORE_TIE = 0.5;

/**
 * Picks a backend under the limits: among those under the soft limit; when every one is at or over
 * it, among those under the hard limit; undefined when every one is at the hard limit (or there is
 * none). Within that set, power of two choices: two distinct backends drawn at random (never `avoid`
 * when another exists), the one with the lower error score wins, or with fewer in flight on a tie.
 * A single candidate is returned even when it is `avoid`.
 */
export function pickBackend<T extends Candidate>(
  backends: readonly T[],
  now: number,
  random: () => number,
  avoid?: T,
  limits: Limits = NO_LIMITS,
): T | undefined {
  let underSoft = 0;
  let underHard = 0;
  for (const b of backends) {
    if (b.inFlight < limits.soft) underSoft++;
    if (b.inFlight < limits.hard) underHard++;
  }
  // The common case, without an allocation: every backend is under its soft limit.
  if (underSoft === backends.length) return twoChoices(backends, now, random, avoid);
  if (underHard === 0) return undefined;
  const cap = underSoft > 0 ? limits.soft : limits.hard;
  return twoChoices(
    backends.filter((b) => b.inFlight < cap),
    now,
    random,
    avoid,
  );
}

function twoChoices<T extends Candidate>(
  backends: readonly T[],
  now: number,
  random: () => number,
  avoid: T | undefined,
): T | undefined {
  const n = backends.length;
  if (n <= 1) return backends[0];
  const skip = avoid === undefined ? -1 : backends.indexOf(avoid);
  const m = skip < 0 ? n : n - 1;
  if (m === 1) return backends[skip === 0 ? 1 : 0];
  let i = Math.min(m - 1, Math.floor(random() * m));
  let j = Math.min(m - 2, Math.floor(random() * (m - 1)));
  if (j >= i) j++;
  if (skip >= 0) {
    if (i >= skip) i++;
    if (j >= skip) j++;
  }
  const a = backends[i] as T;
  const b = backends[j] as T;
  return prefers(a, b, now) ? a : b;
}

function prefers(a: Candidate, b: Candidate, now: number): boolean {
  const diff = a.errors.read(now) - b.errors.read(now);
  if (diff <= -SCORE_TIE) return true;
  if (diff >= SCORE_TIE) return false;
  return a.inFlight <= b.inFlight;
}
