import type { Decider } from "./decider.js";
import type { EventStore } from "./event-store.js";
import type { SnapshotStore } from "./snapshots.js";
import type { AggregateStream } from "./stream.js";

/** How many recent command ids an aggregate remembers for idempotency beyond the server's dedupe window. */
export const REMEMBERED_COMMANDS = 256;

/** An aggregate's state at a version, with the commands recently applied to it. */
export interface LoadedAggregate<S> {
  state: S;
  /** The last stream sequence on the aggregate's subject (0: new aggregate). */
  seq: number;
  /** Command id -> sequence of the message it produced, most recent last, at most REMEMBERED_COMMANDS. */
  commands: Map<string, number>;
  /** How many messages were folded on top of the snapshot (all of them when there was none). */
  messagesSinceSnapshot: number;
}

/** Loads an aggregate from its snapshot plus the events after it, or from its first event. */
export async function loadAggregate<S, C, E extends { type: string }>(
  store: EventStore,
  stream: AggregateStream<E>,
  decider: Decider<S, C, E>,
  aggregateId: string,
  snapshots?: SnapshotStore<S>,
): Promise<LoadedAggregate<S>> {
  // The snapshot and the aggregate's last sequence are fetched together: when the snapshot is
  // current (the common case), the load is one round trip.
  const [snapshot, lastSeq] = await Promise.all([
    snapshots?.load(aggregateId),
    store.lastSequence(stream, aggregateId),
  ]);
  const base: LoadedAggregate<S> = snapshot
    ? {
        state: snapshot.state,
        seq: snapshot.seq,
        commands: new Map(snapshot.commands),
        messagesSinceSnapshot: 0,
      }
    : { state: decider.initialState(), seq: 0, commands: new Map(), messagesSinceSnapshot: 0 };
  return catchUp(store, stream, decider, aggregateId, base, lastSeq);
}

/**
 * Brings a loaded aggregate up to date by folding the events stored after its sequence, up to
 * `lastSeq` when the caller already knows the aggregate's last sequence.
 */
export async function catchUp<S, C, E extends { type: string }>(
  store: EventStore,
  stream: AggregateStream<E>,
  decider: Decider<S, C, E>,
  aggregateId: string,
  from: LoadedAggregate<S>,
  lastSeq?: number,
): Promise<LoadedAggregate<S>> {
  const tail = await store.readAggregate(stream, aggregateId, from.seq, lastSeq);
  if (tail.events.length === 0) return { ...from, seq: Math.max(from.seq, tail.lastSeq) };
  let state = from.state;
  const commands = new Map(from.commands);
  let messages = from.messagesSinceSnapshot;
  let lastMessageSeq = -1;
  for (const recorded of tail.events) {
    state = decider.evolve(state, recorded.event);
    if (recorded.seq !== lastMessageSeq) {
      lastMessageSeq = recorded.seq;
      messages++;
      remember(commands, recorded.causationId, recorded.seq);
    }
  }
  return { state, seq: Math.max(tail.lastSeq, from.seq), commands, messagesSinceSnapshot: messages };
}

/** Records a command id, forgetting the oldest beyond REMEMBERED_COMMANDS. */
export function remember(commands: Map<string, number>, commandId: string, seq: number): void {
  commands.delete(commandId);
  commands.set(commandId, seq);
  if (commands.size > REMEMBERED_COMMANDS) {
    const oldest = commands.keys().next().value;
    if (oldest !== undefined) commands.delete(oldest);
  }
}
