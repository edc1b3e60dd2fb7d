import { setTimeout as sleep } from "node:timers/promises";
import { catchUp, type LoadedAggregate, loadAggregate, remember } from "./aggregate.js";
import type { EventMetadata } from "./batch.js";
import type { Decider } from "./decider.js";
import { isConcurrencyError, isRetryable, RetriesExhaustedError } from "./errors.js";
import type { EventStore } from "./event-store.js";
import type { SnapshotStore } from "./snapshots.js";
import type { AggregateStream } from "./stream.js";

/** What handling a command did. */
export interface CommandResult<S, E> {
  /** The events the command produced (for a repeated command: those of its first handling). */
  events: E[];
  /** The stream sequence of the message holding them; the aggregate's sequence when there were none. */
  seq: number;
  /** The aggregate's state after the command (for a repeated command: its current state). */
  state: S;
  /** True when this command id had already been handled: nothing was appended. */
  duplicate: boolean;
}

export interface CommandHandlerOptions<S> {
  /** Conflicting attempts before giving up (default 20). */
  maxAttempts?: number;
  /** Appends that failed for a passing reason (no acknowledgement, lost connection) tried again (default 2). */
  maxTransientRetries?: number;
  snapshots?: SnapshotStore<S>;
  /** Save a snapshot once this many messages were folded on top of the last one (default 100). */
  snapshotEvery?: number;
  /** Aggregates kept in memory between commands, least recently used dropped first (default 10,000; 0: none). */
  cacheSize?: number;
}

/**
 * Runs commands against one aggregate type: load, decide, append with the expected sequence; on a
 * conflict catch up and decide again (bounded, with jittered backoff). Idempotent by command id.
 *
 * Aggregates stay cached after a command. A cached version may be stale when another instance
 * wrote since; the append's expected sequence then fails and the handler folds the missing tail,
 * so the cache saves the load of hot aggregates without ever deciding on an old state.
 */
export class CommandHandler<S, C, E extends { type: string }> {
  private readonly maxAttempts: number;
  private readonly maxTransientRetries: number;
  private readonly snapshotEvery: number;
  private readonly cacheSize: number;
  private readonly cache = new Map<string, LoadedAggregate<S>>();

  constructor(
    private readonly store: EventStore,
    private readonly stream: AggregateStream<E>,
    private readonly decider: Decider<S, C, E>,
    private readonly opts: CommandHandlerOptions<S> = {},
  ) {
    this.maxAttempts = opts.maxAttempts ?? 20;
    this.maxTransientRetries = opts.maxTransientRetries ?? 2;
    this.snapshotEvery = opts.snapshotEvery ?? 100;
    this.cacheSize = opts.cacheSize ?? 10_000;
  }

  /**
   * Handles one command; DomainErrors from the decider pass through untouched (terminal). An append
   * that fails for a reason that passes (isRetryable: no acknowledgement, a lost connection) is
   * tried again from a fresh load, at most `maxTransientRetries` times.
   */
  async handle(aggregateId: string, command: C, meta: EventMetadata): Promise<CommandResult<S, E>> {
    const cached = this.cache.get(aggregateId);
    let loaded = cached ?? (await this.load(aggregateId));
    // A cached state may be stale. An append finds out by itself (its expected sequence fails),
    // but a refusal or a decision to do nothing would not: those are checked against the stream.
    let fresh = cached === undefined;
    let transientRetries = 0;
    for (let attempt = 1; ; attempt++) {
      const previous = loaded.commands.get(meta.commandId);
      if (previous !== undefined) return this.repeated(previous, loaded.state);
      let events: E[];
      try {
        events = this.decider.decide(command, loaded.state);
      } catch (err) {
        if (fresh) throw err;
        fresh = true;
        const current = await catchUp(this.store, this.stream, this.decider, aggregateId, loaded);
        if (current.seq === loaded.seq) throw err;
        loaded = current;
        this.remember(aggregateId, loaded);
        continue;
      }
      if (events.length === 0) {
        if (!fresh) {
          fresh = true;
          if ((await this.store.lastSequence(this.stream, aggregateId)) !== loaded.seq) {
            loaded = await catchUp(this.store, this.stream, this.decider, aggregateId, loaded);
            this.remember(aggregateId, loaded);
            continue;
          }
        }
        return { events, seq: loaded.seq, state: loaded.state, duplicate: false };
      }
      try {
        const ack = await this.store.append(this.stream, aggregateId, events, {
          ...meta,
          expectedSeq: loaded.seq,
        });
        if (ack.duplicate) {
          // Another handler of the same command appended while we decided: report its result.
          const current = await catchUp(this.store, this.stream, this.decider, aggregateId, loaded);
          this.remember(aggregateId, current);
          return this.repeated(ack.seq, current.state);
        }
        let state = loaded.state;
        for (const e of events) state = this.decider.evolve(state, e);
        const commands = new Map(loaded.commands);
        remember(commands, meta.commandId, ack.seq);
        const next = {
          state,
          seq: ack.seq,
          commands,
          messagesSinceSnapshot: loaded.messagesSinceSnapshot + 1,
        };
        if (this.opts.snapshots && next.messagesSinceSnapshot >= this.snapshotEvery) {
          await this.opts.snapshots.save(aggregateId, { seq: ack.seq, state, commands: [...commands] });
          next.messagesSinceSnapshot = 0;
        }
        this.remember(aggregateId, next);
        return { events, seq: ack.seq, state, duplicate: false };
      } catch (err) {
        if (!isConcurrencyError(err)) {
          // The append's fate is unknown (timeout, lost connection): forget the cached version.
          this.cache.delete(aggregateId);
          if (!isRetryable(err) || transientRetries >= this.maxTransientRetries) throw err;
          transientRetries++;
          // Deciding again from the stream is safe: if the lost append landed, the reload finds its
          // command id and reports it; if it did not, the same message id appends it once.
          await sleep(100 * 2 ** transientRetries);
          loaded = await this.load(aggregateId);
          fresh = true;
          continue;
        }
        if (attempt >= this.maxAttempts)
          throw new RetriesExhaustedError(aggregateId, attempt, { cause: err });
        // Jittered backoff so that many writers on one aggregate do not collide in lockstep.
        await sleep(Math.random() * Math.min(2 ** attempt, 50));
        loaded = await catchUp(this.store, this.stream, this.decider, aggregateId, loaded);
      }
    }
  }

  private async load(aggregateId: string): Promise<LoadedAggregate<S>> {
    const loaded = await loadAggregate(
      this.store,
      this.stream,
      this.decider,
      aggregateId,
      this.opts.snapshots,
    );
    this.remember(aggregateId, loaded);
    return loaded;
  }

  private remember(aggregateId: string, loaded: LoadedAggregate<S>): void {
    if (this.cacheSize <= 0) return;
    this.cache.delete(aggregateId);
    this.cache.set(aggregateId, loaded);
    if (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }

  private async repeated(seq: number, state: S): Promise<CommandResult<S, E>> {
    const first = await this.store.readMessage(this.stream, seq);
    return { events: first.map((r) => r.event), seq, state, duplicate: true };
  }
}
