import {
  getStoredMessage,
  isAppended,
  OrderedReader,
  plantedStored,
  prefixedStream,
  type StreamMessage,
} from "@hangar/eventstore";
import { acquireLease } from "@hangar/lease";
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
} from "@nats-io/jetstream";
import { headers, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { FEED_STREAMS } from "./public-event.js";
import { EVENTS_SUBJECT_PREFIX, eventsStreamName } from "./stream.js";

/** Header of a relayed message: the sequence it has in its aggregate stream. */
export const SOURCE_SEQ_HEADER = "Hangar-Source-Seq";
/** Header of a relayed message: its aggregate stream's name. */
export const SOURCE_STREAM_HEADER = "Hangar-Source-Stream";
/** How many messages of EVENTS a relay walks back over to find a stream's last copy. */
const MAX_RESUME_WALK = 10_000;

/** How often a relay looks again for an aggregate stream that does not exist yet, and retries after a failure. */
const RETRY_MS = 1_000;
/** Copies in flight at once. */
const COPY_BATCH = 256;

export interface EventsRelayOptions {
  /** The prefix of a test's streams (`prefixedStream`); none in production. */
  prefix?: string;
  /** Told about errors; the relay starts over and keeps going until stopped. */
  onError?: (err: unknown) => void;
}

interface Source {
  stream: string;
  /** The aggregate stream's subjects, `<subjectPrefix>.>`. */
  filter: string;
  reader?: OrderedReader;
  /** Messages read and not yet copied, in order. */
  queue: StreamMessage[];
}

/**
 * Copies every message of the aggregate streams into EVENTS, in order per stream, under
 * `events.<original subject>`, with its own headers but not the server's (`Nats-*`): an aggregate's
 * append carries `Nats-Expected-Last-Subject-Sequence`, which nats-server 2.9 also checks when it
 * sources a message into another stream, where the subject's sequence is another, so a sourced EVENTS
 * stalled at the second event of a subject (docs/events.md).
 *
 * Crash-safe, and safe beside another relay: where each stream's copy got to is read back from
 * EVENTS itself (the last message of `events.<subjectPrefix>.>` names its source sequence), and every
 * copy is appended with `expect.lastSequence` of EVENTS (up to COPY_BATCH in flight, each expecting
 * the one before it), so two relays never both append a position: the loser gets a wrong-last-sequence
 * error, reads the positions again and goes on from there. The message id (`<stream>:<seq>`) drops a
 * copy a restarted relay sends twice. The gateways run one relay at a time, under a lease.
 */
export class EventsRelay {
  private readonly sources: Source[];
  private readonly eventsName: string;
  private lastEventsSeq = 0;
  private readonly js: JetStreamClient;
  /** The copying under way, if any: a start-over waits for it, so no copy is half-counted. */
  private writing: Promise<void> | undefined;
  private stopped = false;
  private restarting: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly opts: EventsRelayOptions,
  ) {
    this.eventsName = eventsStreamName(opts.prefix);
    this.js = jetstream(nc);
    this.sources = FEED_STREAMS.map((s) => (opts.prefix ? prefixedStream(s, opts.prefix) : s)).map((s) => ({
      stream: s.name,
      filter: `${s.subjectPrefix}.>`,
      queue: [],
    }));
  }

  /** Starts copying (EVENTS must exist: `ensureEventsStream`); resolves once every existing stream is followed. */
  static async start(
    nc: NatsConnection,
    jsm: JetStreamManager,
    opts: EventsRelayOptions = {},
  ): Promise<EventsRelay> {
    const relay = new EventsRelay(nc, jsm, opts);
    await relay.startOver();
    return relay;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.restarting;
    await this.writing;
    await Promise.all(this.sources.map((s) => s.reader?.stop()));
  }

  /** Reads every stream's position back from EVENTS and follows each stream from there. */
  private startOver(): Promise<void> {
    this.restarting ??= (async () => {
      try {
        await this.writing;
        for (const s of this.sources) {
          await s.reader?.stop();
          s.reader = undefined;
          s.queue = [];
        }
        if (this.stopped) return;
        this.lastEventsSeq = (await this.jsm.streams.info(this.eventsName)).state.last_seq;
        await this.followMissing();
      } catch (err) {
        this.opts.onError?.(err);
        this.later(() => this.startOver());
      }
    })().finally(() => {
      this.restarting = undefined;
      this.write();
    });
    return this.restarting;
  }

  /**
   * The source sequence of the stream's last copy in EVENTS (0: none yet). The last message on the
   * stream's EVENTS subjects is that copy, unless something else was stored there since: nats-server
   * stores its own answers on whatever reply subject a request names (isAppended in
   * @hangar/eventstore). Such a message names no source position, and is walked back over.
   */
  private async lastCopied(s: Source): Promise<number> {
    const prefix = `${EVENTS_SUBJECT_PREFIX}.${s.filter.slice(0, -1)}`;
    let m = await getStoredMessage(this.jsm, this.eventsName, {
      last_by_subj: `${EVENTS_SUBJECT_PREFIX}.${s.filter}`,
    });
    if (!m) return 0;
    let first: number | undefined;
    for (let seq = m.seq, walked = 0; ; walked++) {
      // A copy the server planted (a direct get's answer) names a real copy's position: not this one's.
      if (m && !plantedStored(m)) {
        const copied = Number(m.header?.get(SOURCE_SEQ_HEADER));
        if (m.subject.startsWith(prefix) && m.header?.get(SOURCE_STREAM_HEADER) === s.stream && copied > 0)
          return copied;
      }
      if (walked === MAX_RESUME_WALK)
        throw new Error(
          `no copy of ${s.stream} among the last ${MAX_RESUME_WALK} messages of ${this.eventsName} before ${seq}`,
        );
      // A message deleted in between (EVENTS' limits) is passed over, down to the stream's first.
      first ??= (await this.jsm.streams.info(this.eventsName)).state.first_seq;
      if (--seq < first) return 0;
      m = await getStoredMessage(this.jsm, this.eventsName, { seq });
    }
  }

  /**
   * Follows each stream not followed yet that exists, from the position its copies in EVENTS name. A
   * stream made later (PGCLUSTERS, when the first cluster is made) is looked for again shortly.
   */
  private async followMissing(): Promise<void> {
    let missing = false;
    for (const s of this.sources) {
      if (s.reader) continue;
      if (!(await this.exists(s.stream))) {
        missing = true;
        continue;
      }
      const afterSeq = await this.lastCopied(s);
      s.reader = await OrderedReader.start(this.nc, this.jsm, {
        stream: s.stream,
        filter: s.filter,
        afterSeq,
        onMessage: (m) => {
          // No event (isAppended in @hangar/eventstore), or a copy the server planted: not copied
          // into EVENTS (where, its Nats-* headers left behind, it would pass for an event).
          if (m.planted || !isAppended(m.headers)) return;
          s.queue.push(m);
          this.write();
        },
        onError: (err) => this.opts.onError?.(err),
      });
    }
    if (missing) {
      this.later(() =>
        (this.restarting ?? Promise.resolve())
          .then(() => this.followMissing())
          .catch((err) => {
            this.opts.onError?.(err);
            return this.startOver();
          }),
      );
    }
  }

  private later(work: () => Promise<void>): void {
    if (this.stopped) return;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void work(), RETRY_MS);
    this.retry.unref();
  }

  private async exists(stream: string): Promise<boolean> {
    try {
      await this.jsm.streams.info(stream);
      return true;
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return false;
      throw err;
    }
  }

  /** Copies what the streams delivered, in order (each append expects the one before it). */
  private write(): void {
    if (this.writing || this.restarting || this.stopped) return;
    this.writing = this.copyQueued().finally(() => {
      this.writing = undefined;
    });
  }

  private async copyQueued(): Promise<void> {
    const js = this.js;
    try {
      for (;;) {
        if (this.restarting || this.stopped) return;
        // Up to COPY_BATCH copies in flight, the n-th expecting EVENTS' last sequence + n: one
        // connection's publishes reach the server in order, so they are stored in order, and a copy
        // another relay got in ahead of fails all that follow it (each then expects a wrong sequence).
        const batch: Array<{ source: Source; m: StreamMessage }> = [];
        for (const source of this.sources) {
          for (const m of source.queue) {
            if (batch.length === COPY_BATCH) break;
            batch.push({ source, m });
          }
        }
        if (batch.length === 0) return;
        const base = this.lastEventsSeq;
        const acks = await Promise.all(
          batch.map(({ source, m }, i) =>
            js.publish(`${EVENTS_SUBJECT_PREFIX}.${m.subject}`, m.data, {
              headers: copyHeaders(source.stream, m),
              msgID: `${source.stream}:${m.seq}`,
              expect: { lastSequence: base + i },
            }),
          ),
        );
        for (const { source } of batch) source.queue.shift();
        const last = acks[acks.length - 1];
        // A copy the server already had (its id within the duplicate window) is stored no second
        // time, so the next batch's expectations would be off: read the positions again.
        if (acks.some((a) => a.duplicate) || !last) throw new Error("a copy was a duplicate");
        this.lastEventsSeq = last.seq;
      }
    } catch (err) {
      // Another relay appended (wrong last sequence), or NATS failed: read the positions again.
      this.opts.onError?.(err);
      queueMicrotask(() => void this.startOver());
    }
  }
}

/** A copy's headers: the message's own, not the server's (`Nats-*`), and where it came from. */
function copyHeaders(stream: string, m: StreamMessage): MsgHdrs {
  const h = headers();
  for (const [key, values] of m.headers ?? []) {
    if (key.toLowerCase().startsWith("nats-")) continue;
    for (const v of values) h.append(key, v);
  }
  h.set(SOURCE_STREAM_HEADER, stream);
  h.set(SOURCE_SEQ_HEADER, String(m.seq));
  return h;
}

/** The lease whose holder runs the platform's one events relay (libs/lease, bucket hangar-leases). */
export const RELAY_LEASE = "events-relay";

/** A relay run whenever this process holds the relay lease. */
export interface LeasedRelay {
  /** Whether this process's relay runs now. */
  running(): boolean;
  /** Stops the relay and gives the lease up, so another process's relay takes over at once. */
  stop(): Promise<void>;
}

/**
 * Runs an EventsRelay only while this process holds the lease `events-relay`: of several gateways
 * one copies, and the others stand by (a relay beside another would be safe, since each copy expects
 * EVENTS' last sequence, but it would fail and start over at every event). A holder that dies is
 * replaced within the lease's ttl; one that stops cleanly, at once.
 */
export async function runRelayUnderLease(
  nc: NatsConnection,
  jsm: JetStreamManager,
  opts: EventsRelayOptions & { holder: string; ttlMs?: number; replicas?: number },
): Promise<LeasedRelay> {
  let relay: EventsRelay | undefined;
  let stopped = false;
  // Starts and stops run one after another, in the order the lease's changes came.
  let turn: Promise<void> = Promise.resolve();
  const next = (work: () => Promise<void>) => {
    turn = turn.then(work).catch((err: unknown) => opts.onError?.(err));
    return turn;
  };
  const lease = await acquireLease(nc, {
    name: opts.prefix ? `${RELAY_LEASE}.${opts.prefix}` : RELAY_LEASE,
    holder: opts.holder,
    ttlMs: opts.ttlMs ?? 6_000,
    ...(opts.replicas === undefined ? {} : { replicas: opts.replicas }),
    onAcquired: () =>
      void next(async () => {
        if (!stopped && !relay) relay = await EventsRelay.start(nc, jsm, opts);
      }),
    onLost: () =>
      void next(async () => {
        await relay?.stop();
        relay = undefined;
      }),
    onError: (err) => opts.onError?.(err),
  });
  await turn;
  return {
    running: () => relay !== undefined,
    async stop() {
      stopped = true;
      await next(async () => {
        await relay?.stop();
        relay = undefined;
      });
      await lease.release();
    },
  };
}
