import { injectTraceContext, tracer } from "@hangar/telemetry";
import {
  JetStreamApiCodes,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import {
  decodeStored,
  EVENT_TYPES_HEADER,
  type EventMetadata,
  encodeBatch,
  eventTypesHeaders,
  type RecordedEvent,
} from "./batch.js";
import { ConcurrencyError } from "./errors.js";
import { JetStreamPublisher, PublishRejectedError } from "./publisher.js";
import { OrderedReader } from "./reader.js";
import { getStoredMessage, plantedStored } from "./stored-message.js";
import { type AggregateStream, aggregateSubject } from "./stream.js";

export { EVENT_TYPES_HEADER };

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
/** Messages of an aggregate's tail read with direct gets before a consumer reads the rest. */
const DIRECT_TAIL_MESSAGES = 4;

export class EventStore {
  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    readonly publisher: JetStreamPublisher,
  ) {}

  /** An event store over an open NATS connection; appends not acknowledged within `publishTimeoutMs` (5 s) fail. */
  static async connect(nc: NatsConnection, opts: { publishTimeoutMs?: number } = {}): Promise<EventStore> {
    const publisher = new JetStreamPublisher(nc, opts.publishTimeoutMs);
    return new EventStore(nc, jetstream(nc), await jetstreamManager(nc), publisher);
  }

  /** Stops the publisher; the connection stays open (it belongs to the caller). */
  close(): void {
    this.publisher.close();
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
    const h = eventTypesHeaders(events);
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
      h.append("Nats-Msg-Id", messageIdFor(opts.commandId, aggregateId));
      if (opts.expectedSeq !== "any")
        h.append("Nats-Expected-Last-Subject-Sequence", String(opts.expectedSeq));
      const ack = await this.publisher.publish(subject, data, h);
      span.setAttribute("messaging.nats.stream_sequence", ack.seq);
      return { seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
      if (err instanceof PublishRejectedError && err.apiCode === JetStreamApiCodes.StreamWrongLastSequence) {
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
    // The leader's answer on a replicated stream: a follower's may miss what was just acknowledged.
    const msg = await getStoredMessage(this.jsm, stream.name, {
      last_by_subj: aggregateSubject(stream, aggregateId),
    });
    return msg?.seq ?? 0;
  }

  /** The events of one stored message (e.g. the first result of a repeated command). */
  async readMessage<E extends { type: string }>(
    stream: AggregateStream<E>,
    seq: number,
  ): Promise<RecordedEvent<E>[]> {
    const msg = await getStoredMessage(this.jsm, stream.name, { seq });
    if (!msg) throw new Error(`no message ${seq} in ${stream.name}`);
    return decodeStored(stream, {
      data: msg.data,
      seq: msg.seq,
      headers: msg.header,
      planted: plantedStored(msg),
    });
  }

  /**
   * Reads an aggregate's events after `afterSeq` up to its current last sequence (or `upToSeq`,
   * the last sequence the caller already looked up). Reads exactly up to that sequence, so the
   * result is one consistent version.
   */
  async readAggregate<E extends { type: string }>(
    stream: AggregateStream<E>,
    aggregateId: string,
    afterSeq = 0,
    upToSeq?: number,
  ): Promise<AggregateEvents<E>> {
    const subject = aggregateSubject(stream, aggregateId);
    const lastSeq = upToSeq ?? (await this.lastSequence(stream, aggregateId));
    if (lastSeq <= afterSeq) return { events: [], lastSeq };
    const events: RecordedEvent<E>[] = [];
    // A short tail, the usual catch-up of a cached aggregate another writer appended to, is read with
    // direct gets: one request each, where a consumer costs a create, a delivery and a delete.
    // On a replicated stream a direct get may be answered by a replica that has not stored the
    // message yet (allow_direct): then the rest is read by the consumer below, which the stream's
    // leader serves, and which has every acknowledged message.
    for (let i = 0; i < DIRECT_TAIL_MESSAGES; i++) {
      const msg = await this.jsm.direct.getMessage(stream.name, { seq: afterSeq + 1, next_by_subj: subject });
      if (!msg || msg.seq > lastSeq) break;
      const stored = { data: msg.data, seq: msg.seq, headers: msg.header, planted: plantedStored(msg) };
      for (const e of decodeStored(stream, stored)) events.push(e);
      afterSeq = msg.seq;
      if (afterSeq === lastSeq) return { events, lastSeq };
    }
    let reader: OrderedReader | undefined;
    let settled = false;
    await new Promise<void>((resolve, reject) => {
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
      };
      OrderedReader.start(this.nc, this.jsm, {
        stream: stream.name,
        filter: subject,
        afterSeq,
        onMessage: (m) => {
          if (settled || m.seq > lastSeq) return;
          try {
            for (const e of decodeStored(stream, m)) events.push(e);
          } catch (err) {
            finish(err);
            return;
          }
          if (m.seq === lastSeq) finish();
        },
      }).then((r) => {
        reader = r;
        if (settled) void r.stop();
      }, finish);
    });
    void reader?.stop();
    return { events, lastSeq };
  }
}
