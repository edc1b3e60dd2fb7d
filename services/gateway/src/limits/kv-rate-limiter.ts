import { type KvBucketOptions, openKvBucket } from "@hangar/service";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { RateAction } from "./actions.js";
import { isLostCas, orgKeyToken } from "./kv-cas.js";
import { admit, type BucketState, charge, type Limit } from "./token-bucket.js";

/** The KV bucket holding every org's token buckets, shared by the gateway replicas. */
export const RATE_LIMITS_BUCKET = "hangar-rate-limits";

// A bucket untouched this long has refilled long ago (limits count per minutes, not hours), and a
// missing bucket reads as full, so the store forgets it.
const BUCKET_TTL_MS = 60 * 60 * 1000;

// A replica charges one bucket at a time, so a lost compare-and-set means another replica charged
// it in between; re-reading and charging again converges unless dozens of replicas charge one
// org's action at the same moment.
const MAX_CAS_ATTEMPTS = 16;

/** The answer to one call: admitted (charge or release its ticket once it ended), or refused. */
export type RateDecision = { ok: true; ticket: RateTicket } | { ok: false; retryAfterMs: number };

/** An admitted call's place in its bucket. */
export interface RateTicket {
  /** The call succeeded: take its token from the shared bucket. */
  charge(): Promise<void>;
  /** The call was refused: it costs nothing. */
  release(): void;
}

/**
 * Token buckets per (org, action) in NATS KV, charged with compare-and-set on the key's revision so
 * that every gateway replica spends one shared budget.
 *
 * Why not rate-limiter-flexible with a custom store: its stores count points in fixed windows by
 * atomic increments and charge a call before it runs. Hangar wants a token bucket (a steady refill,
 * Retry-After when one token is back) and charges only calls that succeeded, so that a refused call
 * writes nothing (malformed input leaves every stream as it was). Admission reads the bucket and
 * counts this replica's admitted calls not yet charged; the charge is the compare-and-set.
 */
export class KvRateLimiter {
  readonly #inFlight = new Map<string, number>();
  /** Per bucket, the last charge queued: this replica's charges of a bucket run one after another. */
  readonly #charging = new Map<string, Promise<void>>();

  private constructor(private readonly kv: KV) {}

  /** Opens (creating if needed) the bucket. */
  static async open(nc: NatsConnection, opts: KvBucketOptions = {}): Promise<KvRateLimiter> {
    const kv = await openKvBucket(nc, opts.bucket ?? RATE_LIMITS_BUCKET, {
      replicas: opts.replicas,
      ttlMs: BUCKET_TTL_MS,
    });
    return new KvRateLimiter(kv);
  }

  /** Whether one more call of `action` fits in `org`'s budget now; throws when the store cannot be read. */
  async decide(org: string, action: RateAction, limit: Limit): Promise<RateDecision> {
    const key = bucketKey(org, action);
    const { state } = await this.read(key);
    const admission = admit(state, limit, Date.now(), this.#inFlight.get(key) ?? 0);
    if (!admission.ok) return admission;
    this.#inFlight.set(key, (this.#inFlight.get(key) ?? 0) + 1);
    let open = true;
    const release = () => {
      if (!open) return;
      open = false;
      const left = (this.#inFlight.get(key) ?? 1) - 1;
      if (left > 0) this.#inFlight.set(key, left);
      else this.#inFlight.delete(key);
    };
    return {
      ok: true,
      ticket: {
        charge: () => this.queueCharge(key, limit).finally(release),
        release,
      },
    };
  }

  private queueCharge(key: string, limit: Limit): Promise<void> {
    const previous = this.#charging.get(key) ?? Promise.resolve();
    const mine = previous.catch(() => {}).then(() => this.charge(key, limit));
    const tail = mine.catch(() => {});
    this.#charging.set(key, tail);
    void tail.then(() => {
      if (this.#charging.get(key) === tail) this.#charging.delete(key);
    });
    return mine;
  }

  private async charge(key: string, limit: Limit): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const { state, revision } = await this.read(key);
      const next = JSON.stringify(charge(state, limit, Date.now()));
      try {
        if (revision === undefined) await this.kv.create(key, next);
        else await this.kv.update(key, next, revision);
        return;
      } catch (err) {
        if (!isLostCas(err) || attempt === MAX_CAS_ATTEMPTS) throw err;
      }
    }
  }

  private async read(key: string): Promise<{ state: BucketState | undefined; revision: number | undefined }> {
    const entry = await this.kv.get(key);
    if (entry === null || entry.operation !== "PUT") return { state: undefined, revision: undefined };
    return { state: parseState(entry.string()), revision: entry.revision };
  }
}

/** The key of an org's bucket for an action; a slug KV keys cannot hold is hex-encoded. */
function bucketKey(org: string, action: RateAction): string {
  return `${orgKeyToken(org)}.${action}`;
}

// A value this version cannot read (a newer format, a hand edit) reads as a full bucket rather than
// blocking the org; the next charge overwrites it.
function parseState(text: string): BucketState | undefined {
  try {
    const v = JSON.parse(text) as Partial<BucketState>;
    return typeof v.tokens === "number" && typeof v.at === "number"
      ? { tokens: v.tokens, at: v.at }
      : undefined;
  } catch {
    return undefined;
  }
}
