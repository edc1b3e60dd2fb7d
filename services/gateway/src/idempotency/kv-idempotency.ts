import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { type KvBucketOptions, openKvBucket } from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { isLostCas } from "../limits/kv-cas.js";
import { operationIdOf } from "./keys.js";

/** The KV bucket of the callers' idempotency keys, shared by the gateway replicas. */
export const IDEMPOTENCY_BUCKET = "hangar-idempotency";

/** How long a key's answer is kept: a client retries within a day or not at all. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/** An answer kept for replay. */
export interface RecordedAnswer {
  status: number;
  body: string;
  contentType: string;
}

/** What a request with a key does: act (then finish), replay the first answer, or be refused. */
export type Claim =
  | {
      kind: "acting";
      /** What the backend derives the things it makes from (keys.ts operationIdOf). */
      operationId: string;
      /** Whether this request took the key over from an attempt that stopped beating (its gateway died). */
      takenOver: boolean;
      /**
       * Whether an earlier attempt with this key may have acted: it was taken over, or it ended
       * without an answer worth keeping (a 5xx may come after the write landed). This one derives
       * the same ids (the same nonce), so it meets what that one made.
       */
      resumed: boolean;
      /**
       * Records the answer; with `answer` undefined, releases the key for a retry, which keeps this
       * attempt's nonce (its outcome is unknown). Never throws.
       */
      finish(answer: RecordedAnswer | undefined): Promise<void>;
    }
  | { kind: "replay"; answer: RecordedAnswer }
  /** The key was used with another request. */
  | { kind: "mismatch" }
  /** Another attempt still holds the key (it beats) after waiting `waitMs`. */
  | { kind: "busy" };

/** Takes the key of a request: KvIdempotency in the gateway, anything answering the same in tests. */
export interface IdempotencyStore {
  claim(recordKey: string, fingerprint: string, signal?: AbortSignal): Promise<Claim>;
}

export interface IdempotencyTimings {
  /** How often an acting attempt bumps its record's revision. */
  heartbeatMs: number;
  /** A pending record whose revision stood still this long (as one waiter saw it) is taken over. */
  staleMs: number;
  /** How long a request waits for another attempt with its key before the 409. */
  waitMs: number;
  /** How often a waiter reads the record. */
  pollMs: number;
}

export const DEFAULT_IDEMPOTENCY_TIMINGS: IdempotencyTimings = {
  heartbeatMs: 1000,
  staleMs: 5000,
  waitMs: 15_000,
  pollMs: 100,
};

type PendingRecord = { v: 1; state: "pending"; fp: string; nonce: string; beat: number };
type DoneRecord = { v: 1; state: "done"; fp: string; nonce: string } & RecordedAnswer;
/** An attempt ended without an answer to keep: the next one resumes with its nonce. */
type ReleasedRecord = { v: 1; state: "released"; fp: string; nonce: string };
type IdempotencyRecord = PendingRecord | DoneRecord | ReleasedRecord;

/**
 * Idempotency keys in NATS KV, shared by every gateway replica. The first request with a key creates
 * a pending record (a KV create, so only one acts), beats on it while it runs (an update every
 * `heartbeatMs`, compare-and-set on the revision) and replaces it with its answer. A request meeting
 * a pending record waits; one whose revision stands still for `staleMs` belonged to a gateway that
 * died, and the waiter takes it over (compare-and-set again: one waiter wins) with the same nonce, so
 * it derives the same machine id and command ids as the dead attempt and meets what that one made.
 * Staleness is measured on the waiter's clock from revisions it saw, so clocks need not agree.
 */
export class KvIdempotency implements IdempotencyStore {
  private constructor(
    private readonly kv: KV,
    private readonly timings: IdempotencyTimings,
    private readonly logger: Logger | undefined,
  ) {}

  /** Opens (creating if needed) the bucket, whose entries live IDEMPOTENCY_TTL_MS. */
  static async open(
    nc: NatsConnection,
    opts: KvBucketOptions & { timings?: Partial<IdempotencyTimings>; logger?: Logger } = {},
  ): Promise<KvIdempotency> {
    const kv = await openKvBucket(nc, opts.bucket ?? IDEMPOTENCY_BUCKET, {
      replicas: opts.replicas,
      ttlMs: IDEMPOTENCY_TTL_MS,
    });
    return new KvIdempotency(kv, { ...DEFAULT_IDEMPOTENCY_TIMINGS, ...opts.timings }, opts.logger);
  }

  async claim(recordKey: string, fingerprint: string, signal?: AbortSignal): Promise<Claim> {
    const deadline = Date.now() + this.timings.waitMs;
    let seen: { revision: number; since: number } | undefined;
    for (;;) {
      const nonce = randomBytes(8).toString("hex");
      const fresh: PendingRecord = { v: 1, state: "pending", fp: fingerprint, nonce, beat: 0 };
      try {
        const revision = await this.kv.create(recordKey, JSON.stringify(fresh));
        return this.acting(recordKey, fresh, revision, { takenOver: false, resumed: false });
      } catch (err) {
        if (!isLostCas(err)) throw err;
      }
      // The key is held: read it until it is answered, freed, stale, or the wait is over.
      for (;;) {
        signal?.throwIfAborted();
        const entry = await this.kv.get(recordKey);
        if (entry === null || entry.operation !== "PUT") break;
        const record = parseRecord(entry.string());
        if (record !== undefined && record.fp !== fingerprint) return { kind: "mismatch" };
        if (record?.state === "done") {
          return {
            kind: "replay",
            answer: { status: record.status, body: record.body, contentType: record.contentType },
          };
        }
        if (record?.state === "released") {
          const resumed: PendingRecord = { ...record, state: "pending", beat: 0 };
          try {
            const revision = await this.kv.update(recordKey, JSON.stringify(resumed), entry.revision);
            return this.acting(recordKey, resumed, revision, { takenOver: false, resumed: true });
          } catch (err) {
            if (!isLostCas(err)) throw err;
            continue;
          }
        }
        const now = Date.now();
        if (seen === undefined || seen.revision !== entry.revision) {
          seen = { revision: entry.revision, since: now };
        } else if (now - seen.since >= this.timings.staleMs) {
          // A record this version cannot read is taken over like a stale one, with a new nonce.
          const next: PendingRecord = {
            v: 1,
            state: "pending",
            fp: fingerprint,
            nonce: record?.nonce ?? nonce,
            beat: (record?.state === "pending" ? record.beat : 0) + 1,
          };
          try {
            const revision = await this.kv.update(recordKey, JSON.stringify(next), entry.revision);
            return this.acting(recordKey, next, revision, { takenOver: true, resumed: true });
          } catch (err) {
            if (!isLostCas(err)) throw err;
            continue;
          }
        }
        if (now >= deadline) return { kind: "busy" };
        await sleep(this.timings.pollMs, undefined, signal ? { signal } : {});
      }
    }
  }

  private acting(
    recordKey: string,
    pending: PendingRecord,
    revision: number,
    how: { takenOver: boolean; resumed: boolean },
  ): Claim {
    let current = revision;
    let beat = pending.beat;
    // Another attempt took the key over: this one neither beats nor records any more.
    let lost = false;
    let chain = Promise.resolve();
    const step = (work: () => Promise<void>) => {
      chain = chain.then(async () => {
        if (lost) return;
        try {
          await work();
        } catch (err) {
          if (isLostCas(err)) lost = true;
          else this.logger?.warn({ err, recordKey }, "idempotency record not written");
        }
      });
      return chain;
    };
    const timer = setInterval(() => {
      void step(async () => {
        beat += 1;
        current = await this.kv.update(recordKey, JSON.stringify({ ...pending, beat }), current);
      });
    }, this.timings.heartbeatMs);
    timer.unref();
    return {
      kind: "acting",
      operationId: operationIdOf(recordKey, pending.nonce),
      ...how,
      finish: (answer) => {
        clearInterval(timer);
        return step(async () => {
          if (answer === undefined) {
            const released: ReleasedRecord = {
              v: 1,
              state: "released",
              fp: pending.fp,
              nonce: pending.nonce,
            };
            current = await this.kv.update(recordKey, JSON.stringify(released), current);
            return;
          }
          const done: DoneRecord = { v: 1, state: "done", fp: pending.fp, nonce: pending.nonce, ...answer };
          current = await this.kv.update(recordKey, JSON.stringify(done), current);
        });
      },
    };
  }
}

function parseRecord(text: string): IdempotencyRecord | undefined {
  try {
    const r = JSON.parse(text) as Record<string, unknown>;
    if (r.v !== 1 || typeof r.fp !== "string" || typeof r.nonce !== "string") return undefined;
    const base = { v: 1 as const, fp: r.fp, nonce: r.nonce };
    if (r.state === "pending" && typeof r.beat === "number")
      return { ...base, state: "pending", beat: r.beat };
    if (r.state === "released") return { ...base, state: "released" };
    if (r.state === "done" && typeof r.status === "number" && typeof r.body === "string") {
      const contentType = typeof r.contentType === "string" ? r.contentType : "application/json";
      return { ...base, state: "done", status: r.status, body: r.body, contentType };
    }
    return undefined;
  } catch {
    return undefined;
  }
}
