import { getStoredMessage, OrderedReader, plantedStored, type StreamMessage } from "@hangar/eventstore";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { type EventFilter, matchesFilter } from "./filter.js";
import {
  clusterOfSubject,
  type FeedMessage,
  type FeedPosition,
  type OrgResolver,
  type PublicEvent,
  toPublicEvents,
} from "./public-event.js";
import { eventsFilter, eventsStreamName } from "./stream.js";

/** A public event with its position, and its Server-Sent Events frame built once for every subscriber. */
export class FeedEvent {
  private text: string | undefined;
  private bytes: Uint8Array | undefined;

  constructor(
    readonly event: PublicEvent,
    readonly seq: number,
    readonly index: number,
  ) {}

  /** `id: <id>\ndata: <json>\n\n`: no `event:` line, so an EventSource's `onmessage` gets every event. */
  get frame(): string {
    this.text ??= `id: ${this.event.id}\ndata: ${JSON.stringify(this.event)}\n\n`;
    return this.text;
  }

  /** The frame as UTF-8. */
  get frameBytes(): Uint8Array {
    this.bytes ??= encoder.encode(this.frame);
    return this.bytes;
  }

  /** Whether this event comes after `p` in the feed. */
  isAfter(p: FeedPosition): boolean {
    return this.seq > p.seq || (p.index !== undefined && this.seq === p.seq && this.index > p.index);
  }
}

const encoder = new TextEncoder();

/** Why a subscription ended. */
export type FeedEndReason = "closed" | "behind" | "stopped" | "failed";

export interface FeedSubscribeOptions {
  filter: EventFilter;
  /** Deliver what came after this position first (history), then live; without it, live from now. */
  after?: FeedPosition;
  /** Called synchronously, in feed order, once per matching event. */
  onEvent(e: FeedEvent): void;
  /**
   * Called once when the feed ends the subscription: `behind` (more than `maxPending` live events
   * waited while its history was read: resume from the last id), `stopped` (the feed stopped),
   * `failed` (its history could not be read). Not called for `close()`.
   */
  onEnd?(reason: FeedEndReason, err?: unknown): void;
  /** Live events held while the history is read before the subscription is ended; default 10,000. */
  maxPending?: number;
  /**
   * Called once when everything up to the feed's position at `subscribe` has been delivered (its
   * history, if any) and live events follow: at once without `after`. Not called after an end.
   */
  onCaughtUp?(): void;
}

export interface FeedSubscription {
  close(): void;
}

export interface EventFeedOptions {
  nc: NatsConnection;
  jsm?: JetStreamManager;
  /** The test prefix of the streams (`prefixedStream`); EVENTS is then `<prefix>_EVENTS`. */
  prefix?: string;
  resolver: OrgResolver;
  /** Recent events kept in memory, so that a resume from a recent id needs no consumer; default 10,000. */
  ringSize?: number;
  onError?(err: unknown): void;
}

interface Sub {
  readonly opts: FeedSubscribeOptions;
  /** Live events held while the history is read; undefined once live. */
  pending: FeedEvent[] | undefined;
  /** Live events at or before this position are skipped (a resume from an id this instance has not reached). */
  after: FeedPosition | undefined;
  closed: boolean;
  history?: OrderedReader;
}

/**
 * The feed of one process: ONE live tail of EVENTS, converted once per event and fanned out in memory
 * to every subscriber. A subscriber resuming from an older position first gets the events in between,
 * from the in-memory ring when it still holds them, else from an ordered consumer of its own that
 * reads up to the tail's position at the moment it subscribed; the live events that came meanwhile
 * are held and follow. The hand-over is by sequence, so nothing is missed and nothing comes twice.
 */
export class EventFeed {
  private readonly subs = new Set<Sub>();
  private readonly ring: FeedEvent[] = [];
  /** The ring holds every event after this sequence (whole messages). */
  private ringFrom: number;
  private readonly ringSize: number;
  private lastDispatched: number;
  private tail: OrderedReader | undefined;
  private readonly queue: StreamMessage[] = [];
  private pumping = false;
  private stopped = false;
  /** Orgs of Postgres clusters, learned from their create events or looked up once. */
  private readonly clusterOrgs = new Map<string, string | null>();
  readonly streamName: string;

  private constructor(
    private readonly opts: EventFeedOptions,
    private readonly jsm: JetStreamManager,
    startSeq: number,
  ) {
    this.streamName = eventsStreamName(opts.prefix);
    this.ringSize = opts.ringSize ?? 10_000;
    this.ringFrom = startSeq;
    this.lastDispatched = startSeq;
  }

  /** Follows EVENTS (which must exist: `ensureEventsStream`) live from its current end. */
  static async start(opts: EventFeedOptions): Promise<EventFeed> {
    const jsm = opts.jsm ?? (await jetstreamManager(opts.nc));
    const name = eventsStreamName(opts.prefix);
    const info = await jsm.streams.info(name);
    const feed = new EventFeed(opts, jsm, info.state.last_seq);
    feed.tail = await feed.read(info.state.last_seq, (m) => feed.receive(m));
    return feed;
  }

  /** The last EVENTS sequence dispatched to the live subscribers. */
  get lastSeq(): number {
    return this.lastDispatched;
  }

  /** How many subscriptions are open. */
  get subscribers(): number {
    return this.subs.size;
  }

  subscribe(opts: FeedSubscribeOptions): FeedSubscription {
    const sub: Sub = { opts, pending: undefined, after: opts.after, closed: false };
    const close = () => this.end(sub, "closed");
    if (this.stopped) {
      queueMicrotask(() => opts.onEnd?.("stopped"));
      return { close };
    }
    this.subs.add(sub);
    const after = opts.after;
    if (after === undefined) {
      this.caughtUp(sub);
      return { close };
    }
    // The ring holds whole messages after `ringFrom`: a position inside a message needs that message whole.
    if (after.index === undefined ? after.seq >= this.ringFrom : after.seq > this.ringFrom) {
      // The ring holds everything after `after`: deliver it now, synchronously, then live.
      for (let i = this.ringStartAfter(after); i < this.ring.length; i++) {
        const e = this.ring[i] as FeedEvent;
        if (e.isAfter(after) && matchesFilter(opts.filter, e.event)) opts.onEvent(e);
      }
      this.caughtUp(sub);
      return { close };
    }
    sub.pending = [];
    void this.readHistory(sub, after, this.lastDispatched);
    return { close };
  }

  /** Tells a subscriber it has caught up, on a microtask: never inside subscribe(), before it holds its subscription. */
  private caughtUp(sub: Sub): void {
    queueMicrotask(() => {
      if (!sub.closed) sub.opts.onCaughtUp?.();
    });
  }

  /** Stops the tail and ends every subscription with `stopped`. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.tail?.stop();
    for (const sub of [...this.subs]) this.end(sub, "stopped");
  }

  /** An ordered consumer of all of EVENTS after `afterSeq`. */
  private read(afterSeq: number, onMessage: (m: StreamMessage) => void): Promise<OrderedReader> {
    return OrderedReader.start(this.opts.nc, this.jsm, {
      stream: this.streamName,
      filter: eventsFilter(this.opts.prefix),
      afterSeq,
      onMessage,
      onError: (err) => this.opts.onError?.(err),
    });
  }

  /** Converts one EVENTS message, looking a Postgres cluster's org up first when it is not known. */
  async convert(m: FeedMessage): Promise<FeedEvent[]> {
    const cluster = clusterOfSubject(m.subject, this.opts.prefix);
    if (cluster !== undefined && !this.clusterOrgs.has(cluster)) await this.lookUpCluster(m.subject, cluster);
    return this.convertNow(m);
  }

  private convertNow(m: FeedMessage): FeedEvent[] {
    const resolver: OrgResolver = {
      orgOfApp: (app) => this.opts.resolver.orgOfApp(app),
      orgOfCluster: (c) => this.clusterOrgs.get(c) ?? this.opts.resolver.orgOfCluster?.(c),
    };
    return toPublicEvents(m, resolver, { prefix: this.opts.prefix }).map((event, index) => {
      if (event.type === "pgcluster.create_requested" && event.org !== null)
        this.clusterOrgs.set(event.subject, event.org);
      return new FeedEvent(event, m.seq, index);
    });
  }

  private async lookUpCluster(subject: string, cluster: string): Promise<void> {
    const known = this.opts.resolver.orgOfCluster?.(cluster);
    if (known !== undefined) {
      this.clusterOrgs.set(cluster, known);
      return;
    }
    try {
      // The cluster's first message is its create request, which names its org.
      const first = await getStoredMessage(this.jsm, this.streamName, { seq: 1, next_by_subj: subject });
      const created = first
        ? this.convertNow({ seq: first.seq, subject, data: first.data, planted: plantedStored(first) })
        : [];
      if (!this.clusterOrgs.has(cluster)) this.clusterOrgs.set(cluster, created[0]?.event.org ?? null);
    } catch (err) {
      this.opts.onError?.(err);
    }
  }

  private receive(m: StreamMessage): void {
    if (m.seq <= this.lastDispatched) return;
    const cluster = clusterOfSubject(m.subject, this.opts.prefix);
    if (!this.pumping && (cluster === undefined || this.clusterOrgs.has(cluster))) {
      this.dispatchMessage(m);
      return;
    }
    this.queue.push(m);
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (let m = this.queue.shift(); m !== undefined; m = this.queue.shift()) {
        const cluster = clusterOfSubject(m.subject, this.opts.prefix);
        if (cluster !== undefined && !this.clusterOrgs.has(cluster))
          await this.lookUpCluster(m.subject, cluster);
        if (!this.stopped) this.dispatchMessage(m);
      }
    } finally {
      this.pumping = false;
    }
  }

  private dispatchMessage(m: StreamMessage): void {
    let events: FeedEvent[];
    try {
      events = this.convertNow(m);
    } catch (err) {
      // A message that does not decode is skipped (and reported), not allowed to stop the feed.
      this.opts.onError?.(err);
      events = [];
    }
    this.lastDispatched = m.seq;
    for (const e of events) this.ring.push(e);
    this.trimRing();
    for (const sub of this.subs) {
      if (sub.pending !== undefined) {
        for (const e of events) if (matchesFilter(sub.opts.filter, e.event)) sub.pending.push(e);
        if (sub.pending.length > (sub.opts.maxPending ?? 10_000)) this.end(sub, "behind");
        continue;
      }
      this.deliver(sub, events);
    }
  }

  private deliver(sub: Sub, events: readonly FeedEvent[]): void {
    for (const e of events) {
      if (sub.closed) return;
      if (sub.after !== undefined) {
        if (!e.isAfter(sub.after)) continue;
        sub.after = undefined;
      }
      if (matchesFilter(sub.opts.filter, e.event)) sub.opts.onEvent(e);
    }
  }

  private trimRing(): void {
    if (this.ring.length <= this.ringSize * 2) return;
    const drop = this.ring.length - this.ringSize;
    this.ring.splice(0, drop);
    const first = this.ring[0] as FeedEvent;
    this.ringFrom = first.index === 0 ? first.seq - 1 : first.seq;
  }

  /** Index of the first ring event that may come after `p` (binary search by sequence). */
  private ringStartAfter(p: FeedPosition): number {
    let lo = 0;
    let hi = this.ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.ring[mid] as FeedEvent).seq < p.seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Ends a subscription; its owner hears why, unless it closed it itself. */
  private end(sub: Sub, reason: FeedEndReason, err?: unknown): void {
    if (sub.closed) return;
    sub.closed = true;
    this.subs.delete(sub);
    void sub.history?.stop().catch(() => {});
    if (reason !== "closed") sub.opts.onEnd?.(reason, err);
  }

  /**
   * Reads EVENTS after `after` up to `upTo` (the tail's position when the subscriber came) through an
   * ordered consumer of the subscriber's own, then hands over to the held live events.
   */
  private async readHistory(sub: Sub, after: FeedPosition, upTo: number): Promise<void> {
    const goLive = () => {
      if (sub.closed) return;
      const held = sub.pending ?? [];
      sub.pending = undefined;
      sub.after = undefined;
      void sub.history?.stop().catch(() => {});
      sub.history = undefined;
      this.deliver(sub, held);
      this.caughtUp(sub);
    };
    // From the message of `after` when it names an event inside it, else from the next one.
    const startAfter = after.index === undefined ? after.seq : after.seq - 1;
    if (startAfter >= upTo) {
      goLive();
      return;
    }
    let chain = Promise.resolve();
    let done = false;
    const onMessage = (m: StreamMessage) => {
      if (done || m.seq > upTo) return;
      chain = chain.then(async () => {
        if (sub.closed || done) return;
        const events = await this.convert(m);
        for (const e of events) {
          if (sub.closed) return;
          if (e.isAfter(after) && matchesFilter(sub.opts.filter, e.event)) sub.opts.onEvent(e);
        }
        if (m.seq >= upTo) {
          done = true;
          goLive();
        }
      });
      chain.catch((err) => this.end(sub, "failed", err));
    };
    try {
      const reader = await this.read(startAfter, onMessage);
      if (sub.closed || done) await reader.stop();
      else sub.history = reader;
    } catch (err) {
      this.end(sub, "failed", err);
    }
  }
}
