import {
  type AggregateStream,
  type Decider,
  type EventStore,
  type RecordedEvent,
  type Replay,
  replay,
} from "@hangar/eventstore";
import { CommandError } from "./bus.js";

/** One change of an aggregate seen by a view. */
export interface ViewChange<S, E> {
  aggregateId: string;
  previous: S;
  state: S;
  events: RecordedEvent<E>[];
  /** False while the view rebuilds from history, true for live changes after it caught up. */
  live: boolean;
}

export interface AggregateViewOptions<S, E> {
  /** Only the subjects matching this filter (default the whole stream). */
  filter?: string;
  /** Start after this stream sequence (default: from the first message), for a view of the recent tail only. */
  afterSeq?: number;
  /** Subscribed before the replay starts (as `subscribe` does), so it sees every change. */
  onChange?(change: ViewChange<S, E>): void;
}

/**
 * Every aggregate of a stream folded in memory and kept up to date: a service's rebuild at start
 * (replay from the first message) followed by the live tail. Lets a writer wait until its own append
 * is visible, so reads after writes are consistent.
 *
 * `create` reads nothing: its owner subscribes first, then calls `follow`, so no listener needs to
 * buffer changes that arrive before it exists. `start` does all three for owners with one listener.
 */
export class AggregateView<S, C, E extends { type: string }> {
  private readonly states = new Map<string, S>();
  private readonly seqs = new Map<string, number>();
  private readonly waiters: Array<{ seq: number; resolve(): void; reject(err: Error): void }> = [];
  private readonly listeners = new Set<(change: ViewChange<S, E>) => void>();
  private readonly caughtUpPromise: Promise<unknown>;
  private resolveCaughtUp!: (replayer: Replay) => void;
  private replayer: Replay | undefined;
  private isLive = false;

  private constructor(
    private readonly store: EventStore,
    private readonly stream: AggregateStream<E>,
    private readonly decider: Decider<S, C, E>,
    private readonly from: { filter?: string; afterSeq?: number },
  ) {
    // Settles with the replay's own promise once `follow` has started it.
    this.caughtUpPromise = new Promise<Replay>((resolve) => {
      this.resolveCaughtUp = resolve;
    }).then((r) => r.caughtUp);
    this.caughtUpPromise.then(
      () => {
        this.isLive = true;
      },
      () => undefined,
    );
  }

  /** A view of a stream that reads nothing until `follow`; subscribe its listeners in between. */
  static create<S, C, E extends { type: string }>(
    store: EventStore,
    stream: AggregateStream<E>,
    decider: Decider<S, C, E>,
    opts: AggregateViewOptions<S, E> = {},
  ): AggregateView<S, C, E> {
    const view = new AggregateView(store, stream, decider, opts);
    if (opts.onChange) view.subscribe(opts.onChange);
    return view;
  }

  /** Creates a view and starts following its stream; await `caughtUp` before serving reads. */
  static async start<S, C, E extends { type: string }>(
    ...args: Parameters<typeof AggregateView.create<S, C, E>>
  ): Promise<AggregateView<S, C, E>> {
    const view = AggregateView.create(...args);
    await view.follow();
    return view;
  }

  /** Calls `listener` for every change folded from now on, in stream order; returns the unsubscribe. */
  subscribe(listener: (change: ViewChange<S, E>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts reading: the history from the first message, then the live tail. Call once. */
  async follow(): Promise<void> {
    if (this.replayer) throw new Error(`view of ${this.stream.name} is already following`);
    this.replayer = await replay(this.store, this.stream, {
      follow: true,
      ...(this.from.filter ? { filter: this.from.filter } : {}),
      ...(this.from.afterSeq ? { afterSeq: this.from.afterSeq } : {}),
      onEvents: (events, aggregateId) => this.apply(events, aggregateId),
      onPassed: (seq) => this.passed(seq),
    });
    this.resolveCaughtUp(this.replayer);
  }

  /** Resolves once the history that existed when `follow` started is folded in. */
  get caughtUp(): Promise<unknown> {
    return this.caughtUpPromise;
  }

  get live(): boolean {
    return this.isLive;
  }

  /** The last stream sequence folded into the view (0 before `follow`). */
  get lastSeq(): number {
    return this.replayer?.lastSeq ?? 0;
  }

  get(aggregateId: string): S | undefined {
    return this.states.get(aggregateId);
  }

  /** The stream sequence of the aggregate's last message folded in; 0 when none. */
  seqOf(aggregateId: string): number {
    return this.seqs.get(aggregateId) ?? 0;
  }

  entries(): IterableIterator<[string, S]> {
    return this.states.entries();
  }

  get size(): number {
    return this.states.size;
  }

  /** Resolves once the view has folded the message at `seq` (or a later one). */
  waitForSeq(seq: number, timeoutMs = 5_000): Promise<void> {
    if (this.lastSeq >= seq) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        // What was written is stored; only reading it back is late, so the caller may ask again.
        reject(
          new CommandError(
            `view did not reach stream sequence ${seq} within ${timeoutMs} ms (at ${this.lastSeq})`,
            "timeout",
          ),
        );
      }, timeoutMs);
      const waiter = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.waiters.push(waiter);
    });
  }

  async stop(): Promise<void> {
    this.listeners.clear();
    // Nobody is left to fold what they wait for: they hear it now, not when their timers fire.
    for (const w of this.waiters.splice(0)) w.reject(new CommandError("the view stopped", "unavailable"));
    await this.replayer?.stop();
  }

  /** A message that is no event: nothing to fold, but those waiting for its sequence may go on. */
  private passed(seq: number): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i];
      if (w && w.seq <= seq) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  private apply(events: RecordedEvent<E>[], aggregateId: string): void {
    const previous = this.states.get(aggregateId) ?? this.decider.initialState();
    let state = previous;
    for (const r of events) state = this.decider.evolve(state, r.event);
    const seq = events[0]?.seq ?? 0;
    this.states.set(aggregateId, state);
    this.seqs.set(aggregateId, seq);
    if (this.listeners.size > 0) {
      const change = { aggregateId, previous, state, events, live: this.isLive };
      for (const listener of this.listeners) listener(change);
    }
    if (this.waiters.length > 0) this.passed(seq);
  }
}
