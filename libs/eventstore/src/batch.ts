import { randomUUID } from "node:crypto";
import { hangar } from "@hangar/proto";
import { headers, type MsgHdrs } from "@nats-io/transport-node";
import protobuf from "protobufjs/minimal.js";
import type { AggregateStream } from "./stream.js";

/** Header that names the event types of a message, so subscribers can filter without decoding. */
export const EVENT_TYPES_HEADER = "Hangar-Event-Types";

/**
 * Whether a stored message was written by the event store, whose every append names its events'
 * types in EVENT_TYPES_HEADER. Anything else on a stream's subjects is no event, and readers pass
 * over one that does not decode (decodeStored):
 * nats-server stores whatever is published on a stream's subjects, its own answers included, and
 * any client allowed one JetStream API request may name a stream's subject as the reply (measured:
 * a `$JS.API.STREAM.INFO` request with reply `foo.x` left its JSON answer in a stream of `foo.>`).
 * Decoded as an event, such a message would end every rebuild of the stream.
 */
export function isAppended(h: MsgHdrs | undefined): boolean {
  return h?.has(EVENT_TYPES_HEADER) === true;
}

/**
 * Header nats-server adds to a direct get's answer (with Nats-Subject, Nats-Sequence and
 * Nats-Time-Stamp), and no append carries. Stored on a stream, it marks a copy the server made: a
 * direct get whose reply named a stream's subject lands there with the copied message's own headers
 * and data (measured: a reader of one stream planted a real event, Hangar-Event-Types and all, on
 * another stream's subject, and on an empty subject of the same stream; the copy's own Nats-Msg-Id
 * and Nats-Expected-Last-Subject-Sequence keep the server from storing one of an event appended
 * within the duplicate window, or on a subject whose last sequence is not the one the event
 * expected). Such a copy is no event, whatever it decodes to (`planted`; plantedStored for a message
 * read by sequence or subject, where a direct get's answer carries the server's headers too).
 */
export const SERVER_COPY_HEADER = "Nats-Stream";

/**
 * The events of a stored message; none for a message that is no event (isAppended) or a copy the
 * server planted (`planted`, which the reader tells from the message as stored). Decoded first and
 * its headers read only when that fails: a rebuild reads millions of messages, and parsing each one's
 * headers cost a third of its speed. A message the event store appended that does not decode still
 * throws (a rebuild must not go on without an event).
 */
export function decodeStored<E extends { type: string }>(
  stream: AggregateStream<E>,
  m: {
    readonly data: Uint8Array;
    readonly seq: number;
    readonly headers?: MsgHdrs | undefined;
    /** A copy the server planted (SERVER_COPY_HEADER among the stored headers): no event. */
    readonly planted?: boolean;
  },
): RecordedEvent<E>[] {
  if (m.planted) return [];
  try {
    return decodeBatch(stream, m.data, m.seq);
  } catch (err) {
    if (!isAppended(m.headers)) return [];
    throw err;
  }
}

/** New headers naming `events`' types (EVENT_TYPES_HEADER), as every append carries them. */
export function eventTypesHeaders(events: readonly { type: string }[]): MsgHdrs {
  const h = headers();
  // append, not set: the headers are new, so set's search for an existing key is wasted work.
  h.append(
    EVENT_TYPES_HEADER,
    events.length === 1 ? (events[0] as { type: string }).type : events.map((e) => e.type).join(","),
  );
  return h;
}

/** Who and what caused a decision; copied into every event of it. */
export interface EventMetadata {
  /** The command id: events carry it as causation id, and the message id derives from it. */
  commandId: string;
  /** The flow this command is part of; defaults to the command id. */
  correlationId?: string;
}

/** An event as stored: the domain event plus its envelope and position. */
export interface RecordedEvent<E> {
  readonly event: E;
  readonly eventId: string;
  readonly aggregateId: string;
  readonly timeUnixMs: number;
  readonly correlationId: string;
  readonly causationId: string;
  /** Stream sequence of the message that holds this event (all events of one decision share it). */
  readonly seq: number;
  /** Position of the event inside its message. */
  readonly index: number;
}

/** Encodes the events of one decision as one message body. */
export function encodeBatch<E extends { type: string }>(
  stream: AggregateStream<E>,
  aggregateId: string,
  events: readonly E[],
  meta: EventMetadata,
  now = Date.now(),
): Uint8Array {
  const envelopes = events.map((event) => {
    const { type, payload } = stream.codec.encode(event);
    return {
      eventId: randomUUID(),
      type,
      aggregateId,
      timeUnixMs: now,
      correlationId: meta.correlationId ?? meta.commandId,
      causationId: meta.commandId,
      payload,
    };
  });
  return hangar.v1.EventBatch.encode({ events: envelopes }).finish();
}

// Field numbers of EventBatch and EventEnvelope (proto/hangar/v1/envelope.proto).
const BATCH_EVENTS = 1;
const ENVELOPE_TYPE = 2;
const ENVELOPE_PAYLOAD = 7;
const WIRE_LEN = 2;

/**
 * A recorded event whose envelope metadata is decoded on first access. Replays fold millions of
 * events and read only `event` and `seq`; decoding five strings per event would halve their speed.
 */
class LazyRecordedEvent<E> implements RecordedEvent<E> {
  private envelope: hangar.v1.EventEnvelope | undefined;

  constructor(
    private readonly data: Uint8Array,
    private readonly start: number,
    private readonly end: number,
    readonly event: E,
    readonly seq: number,
    readonly index: number,
  ) {}

  private get full(): hangar.v1.EventEnvelope {
    this.envelope ??= hangar.v1.EventEnvelope.decode(this.data.subarray(this.start, this.end));
    return this.envelope;
  }
  get eventId(): string {
    return this.full.eventId;
  }
  get aggregateId(): string {
    return this.full.aggregateId;
  }
  get timeUnixMs(): number {
    return this.full.timeUnixMs;
  }
  get correlationId(): string {
    return this.full.correlationId;
  }
  get causationId(): string {
    return this.full.causationId;
  }
  toJSON() {
    const { eventId, aggregateId, timeUnixMs, correlationId, causationId, event, seq, index } = this;
    return { event, eventId, aggregateId, timeUnixMs, correlationId, causationId, seq, index };
  }
}

const EMPTY: Uint8Array = new Uint8Array(0);

/**
 * The one reader every decode walks its message with (decodes are synchronous, so they never
 * share it): a replay decodes millions of messages and would otherwise make a reader for each.
 */
const batchReader = protobuf.Reader.create(EMPTY);

/** Decodes one message body into its recorded events (payloads now, envelope metadata on access). */
export function decodeBatch<E extends { type: string }>(
  stream: AggregateStream<E>,
  data: Uint8Array,
  seq: number,
): RecordedEvent<E>[] {
  const out: RecordedEvent<E>[] = [];
  const codec = stream.codec;
  // One reader walks the batch and, inside each envelope, only the fields a fold needs.
  const r = batchReader;
  r.buf = data;
  r.pos = 0;
  r.len = data.length;
  try {
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag >>> 3 !== BATCH_EVENTS || (tag & 7) !== WIRE_LEN) {
        r.skipType(tag & 7);
        continue;
      }
      const end = r.uint32() + r.pos;
      const start = r.pos;
      let type = "";
      let payload: Uint8Array = EMPTY;
      while (r.pos < end) {
        const t = r.uint32();
        const field = t >>> 3;
        if ((field === ENVELOPE_TYPE || field === ENVELOPE_PAYLOAD) && (t & 7) === WIRE_LEN) {
          const n = r.uint32();
          if (r.pos + n > r.len) throw RangeError(`index out of range: ${r.pos} + ${n} > ${r.len}`);
          // A known type is looked up by its bytes; an unknown one is decoded for the error.
          if (field === ENVELOPE_TYPE)
            type =
              codec.wireTypeAt(data, r.pos, r.pos + n) ?? textDecoder.decode(data.subarray(r.pos, r.pos + n));
          else payload = data.subarray(r.pos, r.pos + n);
          r.pos += n;
        } else r.skipType(t & 7);
      }
      out.push(new LazyRecordedEvent(data, start, end, codec.decode(type, payload), seq, out.length));
    }
  } finally {
    // The message is not kept alive by the shared reader.
    r.buf = EMPTY;
  }
  return out;
}

const textDecoder = new TextDecoder();
