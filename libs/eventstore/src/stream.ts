import type { EventCodec } from "./codec.js";

/** One stream per aggregate type; one subject per aggregate instance: `<subjectPrefix>.<aggregateId>`. */
export interface AggregateStream<E extends { type: string }> {
  /** JetStream stream name, e.g. "MACHINES". */
  readonly name: string;
  /** Subject prefix, e.g. "ev.machine"; the stream holds `<subjectPrefix>.>`. */
  readonly subjectPrefix: string;
  readonly codec: EventCodec<E>;
  /** How long the server remembers message ids to drop duplicates. */
  readonly duplicateWindowMs: number;
}

/** One or more tokens joined by dots, checked in one pass (appends check every id). */
const AGGREGATE_ID = /^[A-Za-z0-9_\-:=]+(?:\.[A-Za-z0-9_\-:=]+)*$/;

/** Defines an aggregate stream; the duplicate window defaults to 2 minutes. */
export function defineStream<E extends { type: string }>(spec: {
  name: string;
  subjectPrefix: string;
  codec: EventCodec<E>;
  duplicateWindowMs?: number;
}): AggregateStream<E> {
  if (!/^[A-Za-z0-9_-]+$/.test(spec.name))
    throw new Error(`invalid stream name ${JSON.stringify(spec.name)}`);
  return { duplicateWindowMs: 120_000, ...spec };
}

/** The same stream under another name and subject space, so tests and tenants do not collide. */
export function prefixedStream<E extends { type: string }>(
  stream: AggregateStream<E>,
  prefix: string,
): AggregateStream<E> {
  return { ...stream, name: `${prefix}_${stream.name}`, subjectPrefix: `${prefix}.${stream.subjectPrefix}` };
}

/**
 * The subject of one aggregate instance. An aggregate id is one or more subject tokens joined by
 * dots (e.g. "<app>.<machine_id>"); wildcards, spaces and empty tokens are refused because they
 * would make one subject stand for several aggregates.
 */
export function aggregateSubject(stream: AggregateStream<{ type: string }>, aggregateId: string): string {
  if (!AGGREGATE_ID.test(aggregateId)) throw new Error(`invalid aggregate id ${JSON.stringify(aggregateId)}`);
  return `${stream.subjectPrefix}.${aggregateId}`;
}

/** The aggregate id of a subject of this stream. */
export function aggregateIdOf(stream: AggregateStream<{ type: string }>, subject: string): string {
  return subject.slice(stream.subjectPrefix.length + 1);
}
