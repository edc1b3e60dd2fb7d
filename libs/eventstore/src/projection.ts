import { setTimeout as sleep } from "node:timers/promises";
import { extractTraceContext, tracer } from "@hangar/telemetry";
import {
  AckPolicy,
  type ConsumerInfo,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { type Span, SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { decodeStored, type RecordedEvent } from "./batch.js";
import { isRetryable } from "./errors.js";
import { plantedDelivery } from "./reader.js";
import { type AggregateStream, aggregateIdOf } from "./stream.js";

/** One stored message as a projection sees it. */
export interface ProjectedMessage<E> {
  seq: number;
  subject: string;
  aggregateId: string;
  events: RecordedEvent<E>[];
}

export interface ProjectionOptions<E> {
  /** The durable consumer's name: the projection's identity. */
  name: string;
  /**
   * Applies messages in stream order. Called with one message or several (a batch is whatever
   * is ready, up to `batchSize`); must tolerate being called again with messages it has seen.
   */
  handle(batch: ProjectedMessage<E>[]): Promise<void>;
  filter?: string;
  batchSize?: number;
  /** Start after this sequence when the consumer is created (default: from the first message). */
  afterSeq?: number;
  /**
   * Told about every failed batch before it is retried (or, for an error that is not retryable,
   * before the message at fault is terminated).
   */
  onError?(err: unknown, batch: ProjectedMessage<E>[]): void;
  /** Delay before a failed batch is delivered again (default 1 s). */
  retryDelayMs?: number;
}

/** A running projection. */
export interface RunningProjection {
  /** The last sequence settled: acknowledged, or terminated as a message that can never be applied. */
  readonly lastSeq: number;
  /** Resolves once the projection has acknowledged `seq` or later. */
  waitFor(seq: number): Promise<void>;
  stop(): Promise<void>;
}

/** Creates the projection's durable consumer, or returns the existing one. */
export async function ensureDurable(
  jsm: JetStreamManager,
  streamName: string,
  opts: { name: string; filter: string; batchSize: number; afterSeq?: number },
): Promise<ConsumerInfo> {
  try {
    return await jsm.consumers.info(streamName, opts.name);
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.ConsumerNotFound) throw err;
  }
  return jsm.consumers.add(streamName, {
    durable_name: opts.name,
    filter_subject: opts.filter,
    ack_policy: AckPolicy.Explicit,
    ...(opts.afterSeq
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: opts.afterSeq + 1 }
      : { deliver_policy: DeliverPolicy.All }),
    // Only one batch in flight: after a failure nothing newer is delivered before the failed
    // messages come back, so the projection always applies the stream in order.
    max_ack_pending: opts.batchSize,
    ack_wait: nanos(30_000),
  });
}

/**
 * Runs a projection on a durable consumer: at least once, in stream order, acknowledging a batch
 * only after `handle` finished it. A batch that fails with a retryable error (isRetryable: a lost
 * connection, a conflict, a timeout) is nak'ed and retried after `retryDelayMs`. One that fails with
 * a terminal error (a message that does not decode, a DomainError) is applied again one message
 * at a time, and the message at fault is terminated, so one bad message cannot stall the projection.
 */
export async function runProjection<E extends { type: string }>(
  js: JetStreamClient,
  stream: AggregateStream<E>,
  opts: ProjectionOptions<E>,
): Promise<RunningProjection> {
  const batchSize = opts.batchSize ?? 256;
  const retryDelayMs = opts.retryDelayMs ?? 1000;
  const jsm = await js.jetstreamManager();
  await ensureDurable(jsm, stream.name, {
    name: opts.name,
    filter: opts.filter ?? `${stream.subjectPrefix}.>`,
    batchSize,
    ...(opts.afterSeq !== undefined ? { afterSeq: opts.afterSeq } : {}),
  });
  const consumer = await js.consumers.get(stream.name, opts.name);
  let lastSeq = 0;
  let stopped = false;
  const waiters = new Set<{ seq: number; resolve: () => void }>();
  const acknowledged = (seq: number) => {
    lastSeq = Math.max(lastSeq, seq);
    for (const w of waiters) {
      if (w.seq <= lastSeq) {
        waiters.delete(w);
        w.resolve();
      }
    }
  };

  let current: Awaited<ReturnType<typeof consumer.fetch>> | undefined;
  const loop = async () => {
    while (!stopped) {
      try {
        await fetchBatch();
      } catch (err) {
        // A lost connection or a restarting server: wait, then pull again from the consumer's position.
        if (stopped) return;
        opts.onError?.(err, []);
        await sleep(retryDelayMs);
      }
    }
  };

  const fetchBatch = async () => {
    {
      let failed = false;
      let buffer: JsMsg[] = [];
      current = await consumer.fetch({ max_messages: batchSize, expires: 5_000 });
      for await (const m of current) {
        // After a failure, everything after the failed batch goes back too, to keep the order.
        if (failed) {
          m.nak(retryDelayMs);
          continue;
        }
        buffer.push(m);
        if (m.info.pending > 0 && buffer.length < batchSize) continue;
        const batch = buffer;
        buffer = [];
        const ok = await apply(batch);
        if (!ok) failed = true;
      }
      for (const m of buffer) m.nak(retryDelayMs);
      if (failed && !stopped) await sleep(retryDelayMs);
    }
  };

  const apply = async (msgs: JsMsg[]): Promise<boolean> => {
    const spans: Span[] = [];
    let batch: ProjectedMessage<E>[] = [];
    try {
      batch = msgs.map((m) => {
        spans.push(
          tracer().startSpan(
            `${opts.name} process`,
            {
              kind: SpanKind.CONSUMER,
              attributes: {
                "messaging.system": "nats",
                "messaging.operation.type": "process",
                "messaging.destination.name": m.subject,
                "messaging.consumer.group.name": opts.name,
                "messaging.nats.stream_sequence": m.seq,
              },
            },
            extractTraceContext(m.headers),
          ),
        );
        return {
          seq: m.seq,
          subject: m.subject,
          aggregateId: aggregateIdOf(stream, m.subject),
          // No event (isAppended) projects nothing, and is acknowledged with the rest.
          events: decodeStored(stream, {
            data: m.data,
            seq: m.seq,
            headers: m.headers,
            planted: plantedDelivery(m),
          }),
        };
      });
      await opts.handle(batch);
    } catch (err) {
      for (const s of spans) {
        s.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
        s.end();
      }
      opts.onError?.(err, batch);
      return settleFailed(msgs, err);
    }
    for (const s of spans) s.end();
    const last = msgs[msgs.length - 1];
    if (last) {
      // Acknowledge every message, waiting for the server's confirmation of the last one only.
      for (const m of msgs.slice(0, -1)) m.ack();
      await last.ackAck();
      acknowledged(last.seq);
    }
    return true;
  };

  // A retryable failure sends the batch back; a terminal one finds the message at fault and ends it.
  const settleFailed = async (msgs: JsMsg[], err: unknown): Promise<boolean> => {
    if (isRetryable(err)) {
      for (const m of msgs) m.nak(retryDelayMs);
      return false;
    }
    const [only] = msgs;
    if (msgs.length === 1 && only) {
      // No reason text: nats-server 2.9 takes "+TERM" with a reason for an unknown acknowledgement.
      only.term();
      acknowledged(only.seq);
      return true;
    }
    for (let i = 0; i < msgs.length; i++) {
      if (!(await apply(msgs.slice(i, i + 1)))) {
        for (const m of msgs.slice(i + 1)) m.nak(retryDelayMs);
        return false;
      }
    }
    return true;
  };

  const running = loop();
  return {
    get lastSeq() {
      return lastSeq;
    },
    waitFor(seq) {
      if (seq <= lastSeq) return Promise.resolve();
      return new Promise((resolve) => waiters.add({ seq, resolve }));
    },
    async stop() {
      stopped = true;
      await current?.close();
      await running;
    },
  };
}
