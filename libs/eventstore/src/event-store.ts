import { injectTraceContext, tracer } from "@hangar/telemetry";
import {
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { decodeBatch, type EventMetadata, encodeBatch, type RecordedEvent } from "./batch.js";
import { ConcurrencyError } from "./errors.js";
import { type AggregateStream, aggregateSubject } from "./stream.js";

/** Header that names the event types of a message, so subscribers can filter without decoding. */
export const EVENT_TYPES_HEADER = "Hangar-Event-Types";

/** Options of one append. */
export interface AppendOptions extends EventMetadata {
  /** The aggregate's last sequence the decision was made on (0: the aggregate is new), or "any" to skip the check. */
  expectedSeq: number | "any";
}

/** What an append stored: the message sequence, and whether the server had already stored this command. */
export interface AppendResult {
  seq: number;
  duplicate: boolean;
}

/** The events of one aggregate up to a sequence. */
export interface AggregateEvents<E> {
  events: RecordedEvent<E>[];
  /** The last sequence of the aggregate's subject when it was read (0: no events). */
  lastSeq: number;
}

/** The message id that makes an append idempotent: one per command and aggregate. */
export function messageIdFor(commandId: string, aggregateId: string): string {
  return `${commandId}@${aggregateId}`;
}

/** Appends to and reads from aggregate streams on JetStream. */
export class EventStore {
  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
  ) {}

  /** An event store over an open NATS connection. */
  static async connect(nc: NatsConnection): Promise<EventStore> {
    return new EventStore(nc, jetstream(nc), await jetstreamManager(nc));
  }

  /**
   * Appends the events of one decision as one message, guarded by the aggregate's expected last
   * sequence. Throws ConcurrencyError when another writer got there first.
   */
  async append<E extends { type: string }>(
    stream: AggregateStream<E>,
    aggregateId: string,
    events: readonly E[],
    opts: AppendOptions,
  ): Promise<AppendResult> {
    if (events.length === 0) throw new Error("append needs at least one event");
    const subject = aggregateSubject(stream, aggregateId);
    const data = encodeBatch(stream, aggregateId, events, opts);
    const h = headers();
    h.set(EVENT_TYPES_HEADER, events.map((e) => e.type).join(","));
    const span = tracer().startSpan(`${stream.name} publish`, {
      kind: SpanKind.PRODUCER,
      attributes: {
        "messaging.system": "nats",
        "messaging.operation.type": "publish",
        "messaging.destination.name": subject,
        "hangar.command_id": opts.commandId,
      },
    });
    injectTraceContext(h, trace.setSpan(context.active(), span));
    try {
      const ack = await this.js.publish(subject, data, {
        msgID: messageIdFor(opts.commandId, aggregateId),
        headers: h,
        expect: opts.expectedSeq === "any" ? {} : { lastSubjectSequence: opts.expectedSeq },
      });
      span.setAttribute("messaging.nats.stream_sequence", ack.seq);
      return { seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) {
        const actual = /wrong last sequence: (\d+)/.exec(err.message)?.[1];
        throw new ConcurrencyError(
          subject,
          opts.expectedSeq as number,
          actual === undefined ? undefined : Number(actual),
          { cause: err },
        );
      }
      throw err;
    } finally {
      span.end();
    }
  }

  /** The last sequence stored on an aggregate's subject; 0 when it has no events. */
  async lastSequence(stream: AggregateStream<{ type: string }>, aggregateId: string): Promise<number> {
    const msg = await this.jsm.direct.getMessage(stream.name, {
      last_by_subj: aggregateSubject(stream, aggregateId),
    });
    return msg?.seq ?? 0;
  }

  /** The events of one stored message (e.g. the first result of a repeated command). */
  async readMessage<E extends { type: string }>(
    stream: AggregateStream<E>,
    seq: number,
  ): Promise<RecordedEvent<E>[]> {
    const msg = await this.jsm.direct.getMessage(stream.name, { seq });
    if (!msg) throw new Error(`no message ${seq} in ${stream.name}`);
    return decodeBatch(stream, msg.data, msg.seq);
  }

  /**
   * Reads an aggregate's events after `afterSeq` up to its current last sequence. Reads exactly up
   * to the last sequence seen at the start, so the result is one consistent version.
   */
  async readAggregate<E extends { type: string }>(
    stream: AggregateStream<E>,
    aggregateId: string,
    afterSeq = 0,
  ): Promise<AggregateEvents<E>> {
    const lastSeq = await this.lastSequence(stream, aggregateId);
    if (lastSeq <= afterSeq) return { events: [], lastSeq };
    const consumer = await this.js.consumers.get(stream.name, {
      filter_subjects: aggregateSubject(stream, aggregateId),
      ...(afterSeq > 0
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterSeq + 1 }
        : { deliver_policy: DeliverPolicy.All }),
    });
    const events: RecordedEvent<E>[] = [];
    const messages = await consumer.fetch({
      max_messages: Math.min(lastSeq - afterSeq, 10_000),
      expires: 30_000,
    });
    try {
      for await (const m of messages) {
        if (m.seq > lastSeq) break;
        for (const e of decodeBatch(stream, m.data, m.seq)) events.push(e);
        if (m.seq === lastSeq || m.info.pending === 0) break;
      }
    } finally {
      await messages.close();
      // An ordered consumer lives on for minutes after its last pull; one per load would pile up.
      consumer.delete().catch(() => {});
    }
    return { events, lastSeq };
  }
}
