import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { patiently } from "./patiently.js";
import type { AggregateStream } from "./stream.js";

/** JetStream's error code for a stream name that exists (JSStreamNameExistErr); JetStreamApiCodes has no name for it. */
const STREAM_NAME_IN_USE = 10058;

/** The JetStream configuration of an aggregate stream: an append-only log on disk. */
export function streamConfig(
  stream: AggregateStream<{ type: string }>,
  replicas = 1,
): Partial<StreamConfig> & { name: string } {
  return {
    name: stream.name,
    subjects: [`${stream.subjectPrefix}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    deny_delete: true,
    deny_purge: true,
    allow_direct: true,
    duplicate_window: nanos(stream.duplicateWindowMs),
    num_replicas: replicas,
  };
}

/**
 * Creates the stream, or updates the settings that may change (replicas only when asked for); safe to
 * call from every instance at start. With `update: false` (a service that only reads the stream, whose
 * NATS user may not update it) an existing stream is left as it is, for a writer to update.
 */
export async function ensureStream(
  jsm: JetStreamManager,
  stream: AggregateStream<{ type: string }>,
  opts: { replicas?: number; update?: boolean } = {},
): Promise<void> {
  // Every service ensures its streams at start, at once on a platform that starts them together.
  await patiently(() => ensureStreamOnce(jsm, stream, opts));
}

async function ensureStreamOnce(
  jsm: JetStreamManager,
  stream: AggregateStream<{ type: string }>,
  opts: { replicas?: number; update?: boolean },
): Promise<void> {
  const config = streamConfig(stream, opts.replicas);
  try {
    const info = await jsm.streams.info(stream.name);
    const current = info.config;
    if (
      opts.update !== false &&
      (current.duplicate_window !== config.duplicate_window ||
        current.allow_direct !== config.allow_direct ||
        (opts.replicas !== undefined && current.num_replicas !== opts.replicas))
    ) {
      await jsm.streams.update(stream.name, { ...current, ...config });
    }
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw err;
    try {
      await jsm.streams.add(config);
    } catch (addErr) {
      // Another instance created it between our info and add: that is the state we wanted.
      if (!(addErr instanceof JetStreamApiError) || addErr.code !== STREAM_NAME_IN_USE) throw addErr;
    }
  }
}
