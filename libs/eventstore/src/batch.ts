import { randomUUID } from "node:crypto";
import { hangar } from "@hangar/proto";
import type { AggregateStream } from "./stream.js";

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

/** Decodes one message body into its recorded events. */
export function decodeBatch<E extends { type: string }>(
  stream: AggregateStream<E>,
  data: Uint8Array,
  seq: number,
): RecordedEvent<E>[] {
  // Decoded envelopes are message instances: absent fields read as their defaults, never null.
  const envelopes = hangar.v1.EventBatch.decode(data).events as hangar.v1.EventEnvelope[];
  return envelopes.map((env, index) => ({
    event: stream.codec.decode(env.type, env.payload),
    eventId: env.eventId,
    aggregateId: env.aggregateId,
    timeUnixMs: env.timeUnixMs,
    correlationId: env.correlationId,
    causationId: env.causationId,
    seq,
    index,
  }));
}
