import type { ErrorScore } from "./health.js";

/** What the balancer needs to know about a backend. */
export interface Candidate {
  readonly errors: ErrorScore;
  readonly inFlight: number;
}

// Scores closer than half a fresh failure count as equal, so a long-decayed blip does not
// outweigh load.
const SCORE_TIE = 0.5;

/**
 * Power of two choices: draws two distinct backends at random (never `avoid` when another exists)
 * and returns the one with the lower error score, or with fewer requests in flight on a tie.
 * A single backend is returned even when it is `avoid`.
 */
export function pickBackend<T extends Candidate>(
  backends: readonly T[],
  now: number,
  random: () => number,
  avoid?: T,
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
