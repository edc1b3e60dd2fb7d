/** One app's concurrency, observed once a pass, summarised over the panic and stable windows. */
export class ConcurrencyWindows {
  private readonly ticks: { atMs: number; value: number }[] = [];

  constructor(
    private readonly panicWindowMs: number,
    private readonly stableWindowMs: number,
  ) {}

  /** Records the concurrency seen at `atMs` and forgets what fell out of the stable window. */
  observe(atMs: number, value: number): void {
    this.ticks.push({ atMs, value });
    const oldest = atMs - this.stableWindowMs;
    let drop = 0;
    while (drop < this.ticks.length && (this.ticks[drop] as { atMs: number }).atMs <= oldest) drop++;
    if (drop > 0) this.ticks.splice(0, drop);
  }

  /** The highest concurrency over the panic window ending at `nowMs` (0 with no ticks). */
  panic(nowMs: number): number {
    let max = 0;
    for (const t of this.ticks) if (t.atMs > nowMs - this.panicWindowMs && t.value > max) max = t.value;
    return max;
  }

  /** The mean concurrency over the stable window ending at `nowMs`, or over the ticks seen so far if fewer. */
  stable(nowMs: number): number {
    let sum = 0;
    let n = 0;
    for (const t of this.ticks) {
      if (t.atMs <= nowMs - this.stableWindowMs) continue;
      sum += t.value;
      n++;
    }
    return n === 0 ? 0 : sum / n;
  }
}
