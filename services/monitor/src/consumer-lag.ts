import type { Logger } from "@hangar/telemetry";
import type { JetStreamManager } from "@nats-io/jetstream";
import { Gauge, type Registry } from "prom-client";

/** One durable consumer's backlog, as JetStream last reported it. */
export interface ConsumerLagSample {
  stream: string;
  consumer: string;
  /** Messages of its filter not delivered yet. */
  pending: number;
  /** Messages delivered and not acknowledged yet. */
  ackPending: number;
}

/** The durable consumers of every stream with their backlog (ephemeral consumers are left out: their names are random). */
export async function durableConsumerLag(jsm: JetStreamManager): Promise<ConsumerLagSample[]> {
  const out: ConsumerLagSample[] = [];
  for await (const stream of jsm.streams.names()) {
    for await (const ci of jsm.consumers.list(stream)) {
      if (!ci.config.durable_name) continue;
      out.push({ stream, consumer: ci.name, pending: ci.num_pending, ackPending: ci.num_ack_pending });
    }
  }
  return out;
}

/**
 * NATS consumer lag metrics: every `intervalMs` the monitor asks JetStream for the durable consumers
 * of every stream (projections, webhook deliveries, subscribers' own) and serves their num_pending
 * and num_ack_pending, labelled by stream and consumer.
 */
export class ConsumerLag {
  private samples: ConsumerLagSample[] = [];
  private readonly timer: NodeJS.Timeout;
  private polling: Promise<void> | undefined;

  private constructor(
    private readonly jsm: JetStreamManager,
    private readonly logger: Logger | undefined,
    registry: Registry,
    intervalMs: number,
  ) {
    const samples = () => this.samples;
    const registers = [registry];
    new Gauge({
      name: "hangar_nats_consumer_pending_messages",
      help: "Messages a durable JetStream consumer has not been delivered yet (num_pending), by stream and consumer",
      labelNames: ["stream", "consumer"],
      registers,
      collect() {
        this.reset();
        for (const s of samples()) this.set({ stream: s.stream, consumer: s.consumer }, s.pending);
      },
    });
    new Gauge({
      name: "hangar_nats_consumer_ack_pending_messages",
      help: "Messages a durable JetStream consumer was delivered and has not acknowledged (num_ack_pending)",
      labelNames: ["stream", "consumer"],
      registers,
      collect() {
        this.reset();
        for (const s of samples()) this.set({ stream: s.stream, consumer: s.consumer }, s.ackPending);
      },
    });
    this.timer = setInterval(() => void this.poll(), intervalMs);
    this.timer.unref();
  }

  /** Takes a first reading, then one every `intervalMs` (default 5 s). */
  static async start(
    jsm: JetStreamManager,
    registry: Registry,
    opts: { intervalMs?: number; logger?: Logger } = {},
  ): Promise<ConsumerLag> {
    const lag = new ConsumerLag(jsm, opts.logger, registry, opts.intervalMs ?? 5_000);
    await lag.poll();
    return lag;
  }

  /** Reads the consumers now; a failed reading keeps the last one (and is logged). */
  poll(): Promise<void> {
    this.polling ??= durableConsumerLag(this.jsm)
      .then((samples) => {
        this.samples = samples;
      })
      .catch((err: unknown) =>
        this.logger?.warn({ err: String(err) }, "consumer lag not read; keeping the last"),
      )
      .finally(() => {
        this.polling = undefined;
      });
    return this.polling;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.polling;
  }
}
