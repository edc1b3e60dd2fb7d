import { prefixedStream } from "@hangar/eventstore";
import {
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { FEED_STREAMS } from "./public-event.js";

/** The stream subscribers read: one sequence for every aggregate stream it copies (EventsRelay). */
export const EVENTS_STREAM = "EVENTS";

/** EVENTS holds a copy of `<subject>` of an aggregate stream under `events.<subject>`. */
export const EVENTS_SUBJECT_PREFIX = "events";

/** JetStream's error code for a stream name that exists (JSStreamNameExistErr). */
const STREAM_NAME_IN_USE = 10058;

/** `EVENTS`, or `<prefix>_EVENTS` for the streams `prefixedStream(s, prefix)` names. */
export const eventsStreamName = (prefix?: string): string =>
  prefix ? `${prefix}_${EVENTS_STREAM}` : EVENTS_STREAM;

/** The subject filter that covers every message of EVENTS: `events.<original subject>`. */
export const eventsFilter = (prefix?: string): string =>
  prefix ? `${EVENTS_SUBJECT_PREFIX}.${prefix}.ev.>` : `${EVENTS_SUBJECT_PREFIX}.ev.>`;

/** The aggregate stream's subject of an EVENTS message (its subject without `events.`). */
export const originalSubject = (subject: string): string =>
  subject.startsWith(`${EVENTS_SUBJECT_PREFIX}.`) ? subject.slice(EVENTS_SUBJECT_PREFIX.length + 1) : subject;

/** The streams EVENTS sources, under `prefix` when given. */
export function sourceNames(prefix?: string): string[] {
  return FEED_STREAMS.map((s) => (prefix ? prefixedStream(s, prefix).name : s.name));
}

/**
 * EVENTS: the copies EventsRelay appends (`events.<original subject>`, original body and headers). Its
 * sequence is what an event id names.
 */
export function eventsStreamConfig(
  opts: { prefix?: string; replicas?: number } = {},
): Partial<StreamConfig> & { name: string } {
  return {
    name: eventsStreamName(opts.prefix),
    subjects: [eventsFilter(opts.prefix)],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    deny_delete: true,
    deny_purge: true,
    allow_direct: true,
    // The relay's message ids (<stream>:<seq>) drop a copy sent twice across a relay's restart.
    duplicate_window: nanos(120_000),
    num_replicas: opts.replicas ?? 1,
  };
}

/**
 * Creates EVENTS, or brings an existing one to this configuration: its subjects, no sources (an
 * EVENTS of an earlier Hangar sourced the aggregate streams, which nats-server 2.9 cannot do for
 * them: see EventsRelay), and the replicas when asked for. Returns its name.
 */
export async function ensureEventsStream(
  jsm: JetStreamManager,
  opts: { prefix?: string; replicas?: number } = {},
): Promise<string> {
  const config = eventsStreamConfig(opts);
  try {
    // A create of a stream that exists with the same configuration succeeds; with another, it fails.
    await jsm.streams.add(config);
    return config.name;
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== STREAM_NAME_IN_USE) throw err;
  }
  const info = await jsm.streams.info(config.name);
  const current = info.config;
  const replicasChange = opts.replicas !== undefined && current.num_replicas !== opts.replicas;
  const sourced = (current.sources ?? []).length > 0;
  const subjectsChange = JSON.stringify(current.subjects ?? []) !== JSON.stringify(config.subjects);
  if (replicasChange || sourced || subjectsChange) {
    await jsm.streams.update(config.name, {
      ...current,
      subjects: config.subjects ?? [],
      sources: [],
      ...(replicasChange ? { num_replicas: opts.replicas } : {}),
    });
  }
  return config.name;
}
