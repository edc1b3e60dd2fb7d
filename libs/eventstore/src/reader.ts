import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  type JetStreamManager,
  ReplayPolicy,
} from "@nats-io/jetstream";
import {
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  nanos,
  type QueuedIterator,
  type Status,
  type Subscription,
} from "@nats-io/transport-node";
import { inboxFor } from "./inbox.js";

/** One stored message as the reader delivers it. */
export interface StreamMessage {
  subject: string;
  /** Stream sequence. */
  seq: number;
  data: Uint8Array;
  /** Parsed on first access: most readers never look at them. */
  readonly headers: MsgHdrs | undefined;
  /** Messages matching the filter still to come after this one, as the server counted at delivery. */
  pending: number;
}

/** Times a consumer create is sent before the reader gives up (each waits the API timeout). */
const CREATE_ATTEMPTS = 3;
/** After a failed start-over (the server may still be coming back), the next attempt follows this soon. */
const RETRY_MS = 500;

export interface OrderedReaderOptions {
  stream: string;
  /** Subject filter (one subject or a wildcard). */
  filter: string;
  /** Deliver the messages after this sequence (default 0: from the first). */
  afterSeq?: number;
  onMessage(m: StreamMessage): void;
  /** Told about errors; the reader keeps trying until stopped. */
  onError?(err: unknown): void;
  /** Heartbeat interval; a silent server for twice this long makes the reader start over (default 5 s). */
  heartbeatMs?: number;
}

const STATUS_CONTROL = 100;

/**
 * Reads a stream in order through an ephemeral push consumer (no acks, flow control, heartbeats)
 * delivering to a plain subscription. A gap in the consumer's delivery sequence, a missed
 * heartbeat or a lost consumer make it start over after the last sequence it delivered, so every
 * message is delivered once, in order. Its per-message path is a few string operations, which makes
 * it roughly twice as fast as nats.js's ordered consumers on replays of millions of messages.
 */
export class OrderedReader {
  private sub: Subscription | undefined;
  private consumerName = "";
  private deliverSubject = "";
  private lastDseq = 0;
  private lastSeq: number;
  private lastActivity = Date.now();
  private watchdog: NodeJS.Timeout | undefined;
  private stopped = false;
  private restarting = false;
  private restartAgain = false;
  private retry: NodeJS.Timeout | undefined;
  private statusEvents: QueuedIterator<Status> | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly opts: OrderedReaderOptions,
  ) {
    this.lastSeq = opts.afterSeq ?? 0;
  }

  /** Starts reading; messages flow to `onMessage` until `stop()`. */
  static async start(
    nc: NatsConnection,
    jsm: JetStreamManager,
    opts: OrderedReaderOptions,
  ): Promise<OrderedReader> {
    const reader = new OrderedReader(nc, jsm, opts);
    await reader.subscribe();
    const hb = opts.heartbeatMs ?? 5_000;
    reader.watchdog = setInterval(() => {
      if (Date.now() - reader.lastActivity > 2 * hb) reader.restart();
    }, hb);
    reader.watchdog.unref();
    void reader.restartOnReconnect();
    return reader;
  }

  /** The last stream sequence delivered. */
  get position(): number {
    return this.lastSeq;
  }

  /** The consumer's state on the server (pending and delivered counts). */
  consumerInfo(): Promise<ConsumerInfo> {
    return this.jsm.consumers.info(this.opts.stream, this.consumerName);
  }

  /** Stops delivering and deletes the consumer. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.watchdog);
    clearTimeout(this.retry);
    this.statusEvents?.stop();
    this.sub?.unsubscribe();
    await this.deleteConsumer(this.consumerName);
  }

  private async subscribe(): Promise<void> {
    const deliverSubject = inboxFor(this.nc);
    const name = `rd_${deliverSubject.slice(deliverSubject.lastIndexOf(".") + 1)}`;
    this.deliverSubject = deliverSubject;
    this.consumerName = name;
    this.lastDseq = 0;
    this.lastActivity = Date.now();
    // Subscribe before creating the consumer: the server delivers as soon as it exists.
    this.sub = this.nc.subscribe(deliverSubject, {
      callback: (err, m) => (err ? this.fail(err) : this.receive(m)),
    });
    const hb = this.opts.heartbeatMs ?? 5_000;
    const config: Partial<ConsumerConfig> = {
      name,
      deliver_subject: deliverSubject,
      ack_policy: AckPolicy.None,
      replay_policy: ReplayPolicy.Instant,
      filter_subject: this.opts.filter,
      flow_control: true,
      idle_heartbeat: nanos(hb),
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: nanos(Math.max(30_000, 4 * hb)),
      ...(this.lastSeq > 0
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.lastSeq + 1 }
        : { deliver_policy: DeliverPolicy.All }),
    };
    // On a replicated stream whose peer has just come back, a create can go unanswered while the
    // same create sent again (same name and config: idempotent on the server) succeeds.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.jsm.consumers.add(this.opts.stream, config);
        return;
      } catch (err) {
        const timedOut = (err as Error).name === "TimeoutError";
        if (!timedOut || attempt >= CREATE_ATTEMPTS || this.stopped) throw err;
      }
    }
  }

  private receive(m: Msg): void {
    this.lastActivity = Date.now();
    if (m.subject === this.deliverSubject) {
      this.control(m);
      return;
    }
    const reply = m.reply;
    if (!reply) return;
    const ack = parseAckReply(reply);
    if (!ack) return;
    const { seq, dseq, pending } = ack;
    if (this.stopped) return;
    if (dseq !== this.lastDseq + 1) {
      this.restart();
      return;
    }
    this.lastDseq = dseq;
    this.lastSeq = seq;
    this.opts.onMessage({
      subject: m.subject,
      seq,
      data: m.data,
      pending,
      get headers() {
        return m.headers;
      },
    });
  }

  private control(m: Msg): void {
    const h = m.headers;
    if (!h || h.code !== STATUS_CONTROL) {
      // 409 consumer deleted, and the like: start over from where we are.
      this.restart();
      return;
    }
    if (m.reply) {
      m.respond(); // flow control request
      return;
    }
    // Idle heartbeat: it tells the last delivery sequence, which exposes a lost tail message.
    const lastConsumer = Number(h.get("Nats-Last-Consumer") || "0");
    if (lastConsumer !== this.lastDseq) this.restart();
    const stalled = h.get("Nats-Consumer-Stalled");
    if (stalled) this.nc.publish(stalled);
  }

  /**
   * The consumer lives in the server's memory, so a server that restarted has lost it: after every
   * reconnect, start over at once instead of waiting for the heartbeat watchdog to notice.
   */
  private async restartOnReconnect(): Promise<void> {
    // status() is typed as a plain iterable, but it is nats.js's queued iterator, which stop() ends.
    const events = this.nc.status() as QueuedIterator<Status>;
    this.statusEvents = events;
    for await (const status of events) {
      if (status.type !== "reconnect") continue;
      // A start-over under way may have created its consumer on the server that went away.
      if (this.restarting) this.restartAgain = true;
      else this.restart();
    }
  }

  private restart(): void {
    if (this.stopped || this.restarting) return;
    this.restarting = true;
    this.restartAgain = false;
    clearTimeout(this.retry);
    const old = this.consumerName;
    this.sub?.unsubscribe();
    void this.deleteConsumer(old);
    this.subscribe()
      .catch((err) => {
        this.lastActivity = Date.now();
        this.opts.onError?.(err);
        // The server may still be restarting, or JetStream recovering its streams.
        this.retry = setTimeout(() => this.restart(), RETRY_MS);
        this.retry.unref();
      })
      .finally(() => {
        this.restarting = false;
        if (this.restartAgain) this.restart();
      });
  }

  private fail(err: unknown): void {
    this.opts.onError?.(err);
    this.restart();
  }

  private async deleteConsumer(name: string): Promise<void> {
    if (!name || this.nc.isClosed()) return;
    await this.jsm.consumers.delete(this.opts.stream, name).catch(() => {});
  }
}

/**
 * Reads the sequences out of a JetStream delivery reply subject:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>` (9 tokens), or the
 * 12-token form `$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>.<random>`.
 */
export function parseAckReply(reply: string): { seq: number; dseq: number; pending: number } | undefined {
  const t = reply.split(".");
  if (t[0] !== "$JS" || t[1] !== "ACK" || (t.length !== 9 && t.length < 12)) return undefined;
  const v2 = t.length >= 12;
  return { seq: Number(t[v2 ? 7 : 5]), dseq: Number(t[v2 ? 8 : 6]), pending: Number(t[v2 ? 10 : 8]) };
}
