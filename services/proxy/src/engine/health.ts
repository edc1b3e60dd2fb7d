/** How long it takes a backend's error score to halve. */
export const ERROR_HALF_LIFE_MS = 10_000;

// Below this a score counts as forgotten, so long-healed backends compare as exactly equal.
const FORGOTTEN = 1e-3;

/**
 * A count of recent failures (5xx answers, connect errors) that decays exponentially with time.
 * It is computed from the last update's timestamp when read, so it needs no timer.
 */
export class ErrorScore {
  private value = 0;
  private at = 0;

  constructor(private readonly halfLifeMs = ERROR_HALF_LIFE_MS) {}

  /** The score at `now` (ms, same clock as `record`). */
  read(now: number): number {
    if (this.value === 0) return 0;
    const decayed = this.value * 2 ** (-(now - this.at) / this.halfLifeMs);
    if (decayed < FORGOTTEN) {
      this.value = 0;
      return 0;
    }
    return decayed;
  }

  /** Adds one failure at `now`. */
  record(now: number): void {
    this.value = this.read(now) + 1;
    this.at = now;
  }
}
