// `npm start`'s supervision: whatever it started (nats-server, Postgres, each service) is watched,
// and when it dies it is started again after a backoff that grows with each crash in a row and
// starts over once the process has run healthy for a while. Every crash and restart is logged.
import { setTimeout as sleep } from "node:timers/promises";

/** How long to wait before restarting something that died. */
export interface BackoffPolicy {
  /** The first delay. */
  initialMs: number;
  /** Each crash in a row multiplies the delay by this. */
  factor: number;
  /** The delay never exceeds this. */
  maxMs: number;
  /** A process that ran healthy at least this long before it died starts over at `initialMs`. */
  resetAfterMs: number;
}

/** Quick enough that a killed nats-server is back well within 5 s, slow enough not to spin on a crash loop. */
export const DEFAULT_BACKOFF: BackoffPolicy = {
  initialMs: 250,
  factor: 2,
  maxMs: 15_000,
  resetAfterMs: 60_000,
};

/** Exponential, capped backoff over the crashes in a row of one supervised process. */
export class Backoff {
  private crashesInARow = 0;

  constructor(private readonly policy: BackoffPolicy = DEFAULT_BACKOFF) {}

  /** The delay before the next start of a process that ran healthy for `healthyMs` before it died. */
  next(healthyMs: number): number {
    if (healthyMs >= this.policy.resetAfterMs) this.crashesInARow = 0;
    const { initialMs, factor, maxMs } = this.policy;
    const delay = Math.min(maxMs, initialMs * factor ** this.crashesInARow);
    this.crashesInARow++;
    return Math.round(delay);
  }
}

/** Something npm start runs that can die and be started again. */
export interface Supervisable {
  /** The current process id, for the log. */
  readonly pid: number | undefined;
  /** Resolves with how the current process ended ("exit code 1", "killed by SIGKILL"). */
  exited(): Promise<string>;
  /** Starts it again (ending whatever is left of it first) and resolves once it is ready. */
  restart(): Promise<void>;
}

export interface SuperviseOptions {
  backoff?: BackoffPolicy;
  /** Where crash and restart lines go. */
  log(line: string): void;
  /** Called after each successful restart. */
  onRestart?(): void;
}

/** A running supervision; `stop()` before stopping the process, so its end is not taken for a crash. */
export interface Supervision {
  /** Stops watching, and waits for a restart under way to finish. */
  stop(): Promise<void>;
}

/** Watches a started process and restarts it with backoff whenever it dies, until stopped. */
export function supervise(name: string, target: Supervisable, opts: SuperviseOptions): Supervision {
  const backoff = new Backoff(opts.backoff);
  const stopped = new AbortController();
  const whenStopped = new Promise<undefined>((resolve) =>
    stopped.signal.addEventListener("abort", () => resolve(undefined), { once: true }),
  );
  const pause = (ms: number) => sleep(ms, true, { signal: stopped.signal }).catch(() => false);

  const watch = async () => {
    let healthySince = Date.now();
    while (!stopped.signal.aborted) {
      const how = await Promise.race([target.exited(), whenStopped]);
      if (how === undefined) return;
      let delay = backoff.next(Date.now() - healthySince);
      opts.log(`${name} exited (${how}); restarting in ${delay} ms`);
      for (;;) {
        if (!(await pause(delay))) return;
        try {
          await target.restart();
          break;
        } catch (err) {
          delay = backoff.next(0);
          const reason = (err instanceof Error ? err.message : String(err)).split("\n", 1)[0];
          opts.log(`${name} did not restart (${reason}); retrying in ${delay} ms`);
        }
      }
      healthySince = Date.now();
      opts.log(`${name} restarted (pid ${target.pid})`);
      opts.onRestart?.();
    }
  };
  const watching = watch();
  return {
    async stop() {
      stopped.abort();
      await watching;
    },
  };
}
