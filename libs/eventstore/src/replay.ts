import { setTimeout as sleep } from "node:timers/promises";
import { extractTraceContext } from "@hangar/telemetry";
import { context } from "@opentelemetry/api";
import { decodeStored, type RecordedEvent } from "./batch.js";
import type { EventStore } from "./event-store.js";
import { OrderedReader } from "./reader.js";
import { type AggregateStream, aggregateIdOf } from "./stream.js";

/** Progress of a replay, reported while it reads. */
export interface ReplayProgress {
  /** Messages read so far. */
  messages: number;
  /** Events decoded so far (a message may hold several). */
  events: number;
  /** Messages left until caught up with the stream as it was at the start of the replay. */
  pending: number;
  elapsedMs: number;
}

export interface ReplayOptions<E> {
  /**
   * Called for each message's events, in stream order. Once caught up, it runs in the trace context
   * of the message's publisher (its `traceparent` header), so spans a live change leads to join the
   * trace of the request that made it; replayed history runs in none (and skips parsing headers).
   */
  onEvents(events: RecordedEvent<E>[], aggregateId: string): void;
  /**
   * Called, in stream order too, for a message that is no event (decodeStored): nothing to fold, but
   * the replay is past `seq` (a reader waiting for the subject's last sequence may go on).
   */
  onPassed?(seq: number): void;
  /** Called every `progressEvery` messages and once when caught up. */
  onProgress?(progress: ReplayProgress): void;
  progressEvery?: number;
  /** Only the subjects matching this filter (default: the whole stream). */
  filter?: string;
  /** Start after this sequence (default: from the first message). */
  afterSeq?: number;
  /** Keep following new messages after catching up (default false: stop once caught up). */
  follow?: boolean;
}

/** A running replay. */
export interface Replay {
  /** Resolves once every message that existed at the start has been applied. */
  caughtUp: Promise<ReplayProgress>;
  /** The last stream sequence applied. */
  readonly lastSeq: number;
  stop(): Promise<void>;
}

/**
 * Reads a whole stream (or a filtered part) in order and hands every message's events to
 * `onEvents`: the in-memory rebuild of a service's state at start, optionally followed live.
 */
export async function replay<E extends { type: string }>(
  store: EventStore,
  stream: AggregateStream<E>,
  opts: ReplayOptions<E>,
): Promise<Replay> {
  const started = performance.now();
  const progressEvery = opts.progressEvery ?? 100_000;
  const afterSeq = opts.afterSeq ?? 0;
  // Caught up = reached the last message that existed when the replay started.
  const target = (await store.jsm.streams.info(stream.name)).state.last_seq;
  let messages = 0;
  let events = 0;
  let lastSeq = afterSeq;
  let caughtUp = false;
  let failed = false;
  let stopped = false;
  let resolveCaughtUp!: (p: ReplayProgress) => void;
  let rejectCaughtUp!: (err: unknown) => void;
  const caughtUpPromise = new Promise<ReplayProgress>((resolve, reject) => {
    resolveCaughtUp = resolve;
    rejectCaughtUp = reject;
  });
  const progress = (pending: number): ReplayProgress => ({
    messages,
    events,
    pending,
    elapsedMs: performance.now() - started,
  });
  let reader: OrderedReader | undefined;
  const reachedTarget = (pending: number) => {
    if (caughtUp) return;
    caughtUp = true;
    const p = progress(pending);
    opts.onProgress?.(p);
    resolveCaughtUp(p);
    if (!opts.follow) void reader?.stop();
  };
  reader = await OrderedReader.start(store.nc, store.jsm, {
    stream: stream.name,
    filter: opts.filter ?? `${stream.subjectPrefix}.>`,
    afterSeq,
    onMessage(m) {
      if (failed || (caughtUp && !opts.follow)) return;
      try {
        // No event (isAppended): passed over, its position kept.
        const recorded = decodeStored(stream, m);
        messages++;
        events += recorded.length;
        lastSeq = m.seq;
        const aggregateId = aggregateIdOf(stream, m.subject);
        if (recorded.length === 0) opts.onPassed?.(m.seq);
        else if (caughtUp)
          context.with(extractTraceContext(m.headers), () => opts.onEvents(recorded, aggregateId));
        else opts.onEvents(recorded, aggregateId);
      } catch (err) {
        // A message that does not decode, or a handler that throws, ends the replay: state would be wrong.
        failed = true;
        rejectCaughtUp(err);
        void reader?.stop();
        return;
      }
      if (!caughtUp && messages % progressEvery === 0) opts.onProgress?.(progress(m.pending));
      if (m.seq >= target || m.pending === 0) reachedTarget(m.pending);
    },
  });
  if (target <= afterSeq) {
    reachedTarget(0);
  } else if (!caughtUp) {
    // A filter that matches nothing delivers nothing: ask the consumer whether anything is coming.
    // Asked until it answers: a request that failed (timed out on a busy server, or sent as the
    // reader started over on a new consumer) said nothing, and no message would ever end the wait.
    const started = reader;
    void (async () => {
      for (let delay = 50; !caughtUp && !failed && !stopped; delay = Math.min(delay * 2, 1_000)) {
        const ci = await started.consumerInfo().catch(() => undefined);
        if (caughtUp || failed || stopped) return;
        if (ci) {
          if (ci.num_pending === 0 && ci.delivered.consumer_seq === 0) reachedTarget(0);
          return; // otherwise messages are on their way, and the last of them ends the wait
        }
        await sleep(delay);
      }
    })();
  }
  return {
    caughtUp: caughtUpPromise,
    get lastSeq() {
      return lastSeq;
    },
    async stop() {
      stopped = true;
      await reader?.stop();
    },
  };
}
