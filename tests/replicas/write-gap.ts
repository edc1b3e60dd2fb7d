// The longest pause in accepted writes: the figure of a NATS node's loss (`pnpm bench replicas`).

/** The longest time (s) between consecutive accepted writes within [from, to] (both ends count as writes). */
export function longestWriteGapS(writeTimes: readonly number[], from: number, to: number): number {
  const times = [from, ...writeTimes.filter((t) => t > from && t < to).sort((a, b) => a - b), to];
  let gap = 0;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, (times[i] as number) - (times[i - 1] as number));
  return gap / 1000;
}
