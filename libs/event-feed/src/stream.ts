import { prefixedStream } from "@hangar/eventstore";
import {
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamSource,
} from "@nats-io/jetstream";
import { FEED_STREAMS } from "./public-event.js";

/** The stream subscribers read: one sequence for every sourced aggregate stream. */
export const EVENTS_STREAM = "EVENTS";

/** JetStream's error code for a stream name that exists (JSStreamNameExistErr). */
const STREAM_NAME_IN_USE = 10058;

/** `EVENTS`, or `<prefix>_EVENTS` for the streams `prefixedStream(s, prefix)` names. */
export const eventsStreamName = (prefix?: string): string =>
  prefix ? `${prefix}_${EVENTS_STREAM}` : EVENTS_STREAM;

/** The subject filter that covers every message of EVENTS (its messages keep their original subjects). */
export const eventsFilter = (prefix?: string): string => (prefix ? `${prefix}.ev.>` : "ev.>");

/** The streams EVENTS sources, under `prefix` when given. */
export function sourceNames(prefix?: string): string[] {
  return FEED_STREAMS.map((s) => (prefix ? prefixedStream(s, prefix).name : s.name));
}

/**
 * EVENTS: no subjects of its own, a source per aggregate stream. Sourced messages keep their subject,
 * headers and body; EVENTS gives each its own sequence, which is what an event id names.
 */
export function eventsStreamConfig(
  opts: { prefix?: string; replicas?: number } = {},
): Partial<StreamConfig> & { name: string } {
  return {
    name: eventsStreamName(opts.prefix),
    subjects: [],
    sources: sourceNames(opts.prefix).map((name): StreamSource => ({ name })),
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    deny_delete: true,
    deny_purge: true,
    allow_direct: true,
    num_replicas: opts.replicas ?? 1,
  };
}

/**
 * Creates EVENTS, or adds the sources it lacks to an existing one (never removes one); returns its name.
 * A source stream that does not exist yet is sourced once it does (the server retries).
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
  const have = new Set((info.config.sources ?? []).map((s) => s.name));
  const missing = (config.sources ?? []).filter((s) => !have.has(s.name));
  const replicasChange = opts.replicas !== undefined && info.config.num_replicas !== opts.replicas;
  if (missing.length > 0 || replicasChange) {
    await jsm.streams.update(config.name, {
      ...info.config,
      sources: [...(info.config.sources ?? []), ...missing],
      ...(replicasChange ? { num_replicas: opts.replicas } : {}),
    });
  }
  return config.name;
}
