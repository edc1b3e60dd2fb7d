import { mkdir, rmdir, stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

/** `value` when `valid` says it is one, else an error naming `what`: names that go into nft scripts and ip commands. */
export function checked(what: string, value: string, valid: (v: string) => boolean): string {
  if (!valid(value)) throw new Error(`not a valid ${what}: ${JSON.stringify(value)}`);
  return value;
}

/** An IPv4 address as a number, for arithmetic on blocks of /30s. */
export function ipv4ToNumber(ip: string): number {
  return ip.split(".").reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** The IPv4 address of a number made by ipv4ToNumber. */
export function numberToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

/**
 * Runs `work` holding the lock folder `lock` across the processes of this host (mkdir is atomic).
 * A lock older than `staleMs` was left by a process that died holding it and is taken over: no
 * holder keeps it that long.
 */
export async function withDirLock<T>(
  lock: string,
  work: () => Promise<T>,
  opts: { staleMs?: number; pollMs?: number } = {},
): Promise<T> {
  const staleMs = opts.staleMs ?? 10_000;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const age = await stat(lock).then(
        (st) => Date.now() - st.mtimeMs,
        () => 0,
      );
      if (age > staleMs) await rmdir(lock).catch(() => undefined);
      else await sleep(opts.pollMs ?? 20);
    }
  }
  try {
    return await work();
  } finally {
    await rmdir(lock).catch(() => undefined);
  }
}
