import {
  type AggregateStream,
  type Decider,
  type EventStore,
  type RecordedEvent,
  type Replay,
  replay,
} from "@hangar/eventstore";

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
  onChange?(change: ViewChange<S, E>): void;
}

/**
 * Every aggregate of a stream folded in memory and kept up to date: a service's rebuild at start
 * (replay from the first message) followed by the live tail. Lets a writer wait until its own append
 * is visible, so reads after writes are consistent.
 */
export class AggregateView<S, C, E extends { type: string }> {
  private readonly states = new Map<string, S>();
  private readonly seqs = new Map<string, number>();
  private readonly waiters: Array<{ seq: number; resolve(): void }> = [];
  private replayer!: Replay;
  private isLive = false;

  private constructor(
    private readonly decider: Decider<S, C, E>,
    private readonly opts: AggregateViewOptions<S, E>,
  ) {}

  /** Starts following a stream; await `caughtUp` before serving reads. */
  static async start<S, C, E extends { type: string }>(
    store: EventStore,
    stream: AggregateStream<E>,
    decider: Decider<S, C, E>,
    opts: AggregateViewOptions<S, E> = {},
  ): Promise<AggregateView<S, C, E>> {
    const view = new AggregateView(decider, opts);
    view.replayer = await replay(store, stream, {
      follow: true,
      ...(opts.filter ? { filter: opts.filter } : {}),
      onEvents: (events, aggregateId) => view.apply(events, aggregateId),
    });
    void view.replayer.caughtUp.then(
      () => {
        view.isLive = true;
      },
      () => undefined,
    );
    return view;
  }

  /** Resolves once the history that existed at start is folded in. */
  get caughtUp(): Promise<unknown> {
    return this.replayer.caughtUp;
  }

  get live(): boolean {
    return this.isLive;
  }

  /** The last stream sequence folded into the view. */
  get lastSeq(): number {
    return this.replayer.lastSeq;
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
    if (this.replayer.lastSeq >= seq) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(
          new Error(`view did not reach stream sequence ${seq} within ${timeoutMs} ms (at ${this.lastSeq})`),
        );
      }, timeoutMs);
      const waiter = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.waiters.push(waiter);
    });
  }

  async stop(): Promise<void> {
    await this.replayer.stop();
  }

  private apply(events: RecordedEvent<E>[], aggregateId: string): void {
    const previous = this.states.get(aggregateId) ?? this.decider.initialState();
    let state = previous;
    for (const r of events) state = this.decider.evolve(state, r.event);
    this.states.set(aggregateId, state);
    this.seqs.set(aggregateId, events[0]?.seq ?? 0);
    this.opts.onChange?.({ aggregateId, previous, state, events, live: this.isLive });
    const seq = events[0]?.seq ?? 0;
    if (this.waiters.length > 0) {
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const w = this.waiters[i];
        if (w && w.seq <= seq) {
          this.waiters.splice(i, 1);
          w.resolve();
        }
      }
    }
  }
}
