import { setTimeout as sleep } from "node:timers/promises";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { type KV, type KvEntry, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";

/** The KV bucket of the platform's leadership leases. */
export const LEASES_BUCKET = "hangar-leases";

/** What a lease's key holds while someone holds it. */
export interface LeaseValue {
  holder: string;
  /** Wall-clock time (ms since the epoch) after which anyone may take the lease over. */
  expires_at_ms: number;
}

export interface LeaseOptions {
  /** The bucket (created when missing, history 1); default `hangar-leases`. */
  bucket?: string;
  /** Bucket replicas when this call creates it; default 1. */
  replicas?: number;
  /** The lease: one KV key, so letters, digits, `-`, `_` and `.`-separated tokens. */
  name: string;
  /**
   * Who asks: unique per live process (a restarted process may reuse its name: it takes its own
   * lease back at once instead of waiting for it to expire).
   */
  holder: string;
  /** How long a write holds the lease without a renewal; renewed (or re-tried) every ttlMs / 3. */
  ttlMs: number;
  /** Called each time this holder gets the lease. */
  onAcquired?: () => void;
  /** Called each time this holder stops holding it without release(): why, for the log. */
  onLost?: (reason: string) => void;
  /** Called when a KV call failed (the lease is kept until its deadline, and the call re-tried). */
  onError?: (err: unknown) => void;
}

/** A candidacy for a lease: holds it whenever it can, until release(). */
export interface Lease {
  /**
   * True while this holder's last write still holds the lease, by this process's clock, less a margin
   * of ttlMs / 6: it turns false before a standby may take the lease over.
   */
  isHeld(): boolean;
  /** Resolves once the lease is held (at once when it is); rejects when released first. */
  whenHeld(): Promise<void>;
  /** Stops renewing and asking; deletes the key when it is still ours, so a standby takes over at once. */
  release(): Promise<void>;
}

/**
 * Starts asking for lease `name` and resolves after the first attempt (isHeld() tells whether it
 * won). A holder renews every ttlMs / 3 with a compare-and-set on the key's revision; a standby
 * retries as often and watches the key, so a release hands over at once and an expired lease (its
 * holder stopped renewing, as a killed process does) is taken over within ttlMs / 3 of its expiry.
 *
 * A holder counts itself holding until `write time + ttlMs - margin` by its own clock (the margin is
 * half a renewal period, ttlMs / 6), and a standby takes over only after `expires_at_ms` (write time +
 * ttlMs) by its clock: a holder that stopped renewing has stopped counting itself holding a margin
 * before anyone may take over. One holder at a time still needs clocks that agree better than that
 * margin (NTP), as every lease built on time does.
 */
export async function acquireLease(nc: NatsConnection, opts: LeaseOptions): Promise<Lease> {
  if (!(opts.ttlMs > 0)) throw new Error(`lease ttlMs must be positive, not ${opts.ttlMs}`);
  if (!opts.holder) throw new Error("a lease needs a holder name");
  const kv = await patiently(
    () => new Kvm(nc).create(opts.bucket ?? LEASES_BUCKET, { history: 1, replicas: opts.replicas ?? 1 }),
    opts.onError,
  );
  const lease = new KvLease(kv, opts);
  await lease.start();
  return lease;
}

/** Set-up calls (the bucket, the watch) tried this many times when NATS does not answer. */
const SETUP_ATTEMPTS = 10;
const SETUP_RETRY_MS = 500;

/**
 * Runs a set-up call again when it failed for a reason that passes (no answer in time, no responders
 * while a JetStream cluster elects a leader): a busy cluster must not stop a service from starting.
 * A JetStream API error (a bucket configured otherwise) is thrown at once.
 */
async function patiently<T>(call: () => Promise<T>, onError?: (err: unknown) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= SETUP_ATTEMPTS || err instanceof JetStreamApiError) throw err;
      onError?.(err);
      await sleep(SETUP_RETRY_MS);
    }
  }
}

/** Whether a KV create or update failed because the key's revision moved on (another writer won). */
function isLostCas(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

function parseValue(entry: KvEntry): LeaseValue | undefined {
  if (entry.operation !== "PUT") return undefined;
  try {
    const v = entry.json<Partial<LeaseValue>>();
    if (typeof v.holder === "string" && typeof v.expires_at_ms === "number")
      return { holder: v.holder, expires_at_ms: v.expires_at_ms };
  } catch {
    // A value that is not a lease (a hand edit) holds nobody: it may be overwritten at its revision.
  }
  return undefined;
}

class KvLease implements Lease {
  readonly #kv: KV;
  readonly #opts: LeaseOptions;
  readonly #period: number;
  /** How long before its write's expiry a holder stops counting itself holding. */
  readonly #margin: number;
  /** The revision of our last write while held; undefined while not held. */
  #revision: number | undefined;
  /** Local time until which we count our last write holding the lease (its expiry less the margin). */
  #deadline = 0;
  #released = false;
  #timer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  /** Attempts run one at a time: the tick, a watch notice and release() queue here. */
  #queue: Promise<void> = Promise.resolve();
  #waiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  #stopWatch: (() => void) | undefined;

  constructor(kv: KV, opts: LeaseOptions) {
    this.#kv = kv;
    this.#opts = opts;
    this.#period = Math.max(1, Math.floor(opts.ttlMs / 3));
    this.#margin = Math.floor(this.#period / 2);
  }

  async start(): Promise<void> {
    await patiently(() => this.#watch(), this.#opts.onError);
    // A first attempt that failed (reported through onError) leaves the lease not held; the next
    // tick asks again, as after any failed call.
    await this.#run(() => this.#attempt()).catch(() => {});
    this.#schedule();
  }

  isHeld(): boolean {
    return this.#revision !== undefined && Date.now() < this.#deadline;
  }

  whenHeld(): Promise<void> {
    if (this.#released) return Promise.reject(new Error(`lease ${this.#opts.name} was released`));
    if (this.isHeld()) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadlineTimer);
    this.#stopWatch?.();
    for (const w of this.#waiters.splice(0)) w.reject(new Error(`lease ${this.#opts.name} was released`));
    await this.#run(async () => {
      const revision = this.#revision;
      this.#revision = undefined;
      if (revision === undefined) return;
      try {
        // At our revision only: a lease someone else holds by now stays theirs.
        await this.#kv.delete(this.#opts.name, { previousSeq: revision });
      } catch (err) {
        if (!isLostCas(err)) throw err;
      }
    });
  }

  #run(step: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(step);
    this.#queue = next.catch((err) => this.#opts.onError?.(err));
    return next;
  }

  #schedule(): void {
    if (this.#released) return;
    this.#timer = setTimeout(() => {
      // A failed attempt was reported through onError; the next tick tries again.
      void this.#run(() => this.#attempt())
        .catch(() => {})
        .finally(() => this.#schedule());
    }, this.#period);
    this.#timer.unref();
  }

  /** Watches the key so that a standby asks at once when the holder releases it. */
  async #watch(): Promise<void> {
    const iter = await this.#kv.watch({ key: this.#opts.name, include: "updates" });
    this.#stopWatch = () => iter.stop();
    void (async () => {
      for await (const entry of iter) {
        if (this.#released) break;
        if (entry.operation !== "PUT" && this.#revision === undefined)
          void this.#run(() => this.#attempt()).catch(() => {});
      }
    })().catch((err) => this.#opts.onError?.(err));
  }

  /** Renews the lease when held, or takes it when free or expired. */
  async #attempt(): Promise<void> {
    if (this.#released) return;
    if (this.#revision !== undefined) return this.#renew(this.#revision);
    const entry = await this.#kv.get(this.#opts.name);
    const current = entry === null ? undefined : parseValue(entry);
    if (entry === null || current === undefined) {
      await this.#write((value) =>
        entry === null || entry.operation !== "PUT"
          ? this.#kv.create(this.#opts.name, value)
          : this.#kv.update(this.#opts.name, value, entry.revision),
      );
      return;
    }
    if (current.holder === this.#opts.holder || current.expires_at_ms <= Date.now())
      await this.#write((value) => this.#kv.update(this.#opts.name, value, entry.revision));
  }

  async #renew(revision: number): Promise<void> {
    try {
      await this.#write((value) => this.#kv.update(this.#opts.name, value, revision));
    } catch (err) {
      if (!isLostCas(err)) throw err;
      const entry = await this.#kv.get(this.#opts.name).catch(() => null);
      const now = entry === null ? undefined : parseValue(entry);
      this.#lose(
        now ? `lease ${this.#opts.name} is held by ${now.holder}` : `lease ${this.#opts.name} was taken away`,
      );
    }
  }

  /** Writes our value with `put`; a lost compare-and-set leaves the state as it was (it throws). */
  async #write(put: (value: string) => Promise<number>): Promise<void> {
    const startedAt = Date.now();
    const value: LeaseValue = { holder: this.#opts.holder, expires_at_ms: startedAt + this.#opts.ttlMs };
    let revision: number;
    try {
      revision = await put(JSON.stringify(value));
    } catch (err) {
      // A standby that lost the race to another standby just stays standby.
      if (this.#revision === undefined && isLostCas(err)) return;
      throw err;
    }
    const wasHeld = this.isHeld();
    // Recorded even when release() came meanwhile: its queued delete then removes what we wrote.
    this.#revision = revision;
    // The write holds for others until startedAt + ttlMs; we stop counting on it a margin earlier.
    this.#deadline = startedAt + this.#opts.ttlMs - this.#margin;
    if (this.#released) return;
    this.#armDeadline();
    if (!wasHeld) {
      this.#opts.onAcquired?.();
      for (const w of this.#waiters.splice(0)) w.resolve();
    }
  }

  /** Calls #expired at our deadline. */
  #armDeadline(): void {
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = setTimeout(() => this.#expired(), Math.max(0, this.#deadline - Date.now()));
    this.#deadlineTimer.unref();
  }

  /** Our deadline passed without a renewal (NATS unreachable, a stalled process). */
  #expired(): void {
    if (this.#revision === undefined || this.#released) return;
    // Node's timers run on the event loop's cached monotonic time, which lags the wall clock on a busy
    // loop: a timer may fire a few ms before Date.now() reaches the deadline. Then wait out the rest.
    if (Date.now() < this.#deadline) {
      this.#armDeadline();
      return;
    }
    this.#lose(`lease ${this.#opts.name} expired: no renewal within ${this.#opts.ttlMs - this.#margin} ms`);
  }

  #lose(reason: string): void {
    if (this.#revision === undefined) return;
    this.#revision = undefined;
    clearTimeout(this.#deadlineTimer);
    this.#opts.onLost?.(reason);
  }
}
