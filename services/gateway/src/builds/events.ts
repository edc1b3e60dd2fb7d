import type { BuildEvent } from "@hangar/domain";
import {
  type AggregateStream,
  aggregateSubject,
  decodeStored,
  type EventStore,
  OrderedReader,
  type RecordedEvent,
} from "@hangar/eventstore";
import { endsBuild } from "./views.js";

/**
 * One build's events in order from its first. Without `follow` it ends with the events stored when
 * it was called. With `follow`, one ordered reader delivers the history and then the live tail (so
 * no event falls between reading and subscribing) until the build ends or `signal` aborts.
 */
export async function* readBuildEvents(
  store: EventStore,
  stream: AggregateStream<BuildEvent>,
  aggregateId: string,
  opts: { follow: boolean; signal: AbortSignal },
): AsyncGenerator<RecordedEvent<BuildEvent>> {
  if (!opts.follow) {
    yield* (await store.readAggregate(stream, aggregateId)).events;
    return;
  }
  const queue: RecordedEvent<BuildEvent>[] = [];
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const reader = await OrderedReader.start(store.nc, store.jsm, {
    stream: stream.name,
    filter: aggregateSubject(stream, aggregateId),
    onMessage: (m) => {
      try {
        queue.push(...decodeStored(stream, m));
      } catch (err) {
        failure = err;
      }
      notify();
    },
  });
  opts.signal.addEventListener("abort", notify);
  try {
    while (!opts.signal.aborted) {
      if (failure) throw failure;
      const next = queue.shift();
      if (!next) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      yield next;
      if (endsBuild(next.event)) return;
    }
  } finally {
    opts.signal.removeEventListener("abort", notify);
    await reader.stop();
  }
}
