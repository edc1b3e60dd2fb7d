import { DeliverPolicy, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import { decodeBatch, type RecordedEvent } from "./batch.js";
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
  /** Called for each message's events, in stream order. */
  onEvents(events: RecordedEvent<E>[], aggregateId: string): void;
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
 * Reads a whole stream (or a filtered part) in order with an ordered consumer and hands every
 * message's events to `onEvents`; the in-memory rebuild of a service's state at start.
 */
export async function replay<E extends { type: string }>(
  js: JetStreamClient,
  stream: AggregateStream<E>,
  opts: ReplayOptions<E>,
): Promise<Replay> {
  const started = performance.now();
  const filter = opts.filter ?? `${stream.subjectPrefix}.>`;
  const progressEvery = opts.progressEvery ?? 100_000;
  const consumer = await js.consumers.get(stream.name, {
    filter_subjects: filter,
    ...(opts.afterSeq
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: opts.afterSeq + 1 }
      : { deliver_policy: DeliverPolicy.All }),
  });
  const info = await js.jetstreamManager().then((jsm) => jsm.streams.info(stream.name));
  // Caught up = reached the last message that existed when the replay started.
  const target = info.state.last_seq;
  let messages = 0;
  let events = 0;
  let lastSeq = opts.afterSeq ?? 0;
  let caughtUp = false;
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
  const reachedTarget = (pending: number) => {
    if (caughtUp) return;
    caughtUp = true;
    const p = progress(pending);
    opts.onProgress?.(p);
    resolveCaughtUp(p);
    if (!opts.follow) void iter?.close();
  };

  let iter: Awaited<ReturnType<typeof consumer.consume>> | undefined;
  const onMessage = (m: JsMsg) => {
    if (!opts.follow && caughtUp) return;
    try {
      const recorded = decodeBatch(stream, m.data, m.seq);
      messages++;
      events += recorded.length;
      lastSeq = m.seq;
      opts.onEvents(recorded, aggregateIdOf(stream, m.subject));
    } catch (err) {
      rejectCaughtUp(err);
      void iter?.close();
      return;
    }
    const pending = m.info.pending;
    if (!caughtUp && messages % progressEvery === 0) opts.onProgress?.(progress(pending));
    if (m.seq >= target || pending === 0) reachedTarget(pending);
  };
  if (target <= (opts.afterSeq ?? 0) || info.state.messages === 0) reachedTarget(0);
  if (!caughtUp || opts.follow) {
    iter = await consumer.consume({ max_messages: 10_000, threshold_messages: 5_000, callback: onMessage });
    // A filter that matches nothing delivers nothing: ask the consumer whether anything is coming.
    const ci = await consumer.info();
    if (ci.num_pending === 0 && ci.delivered.consumer_seq === 0) reachedTarget(0);
  }
  return {
    caughtUp: caughtUpPromise,
    get lastSeq() {
      return lastSeq;
    },
    async stop() {
      await iter?.close();
    },
  };
}
