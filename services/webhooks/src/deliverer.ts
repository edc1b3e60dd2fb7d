import {
  givesUp,
  nextAttemptAtMs,
  type RetryPolicy,
  type Webhook,
  type WebhookCommand,
  type WebhookDelivery,
} from "@hangar/domain";
import type { Logger } from "@hangar/telemetry";
import { Counter, Histogram, type Registry } from "prom-client";
import { postDelivery, type SendOutcome } from "./sender.js";
import { signatureHeader } from "./signing.js";

type RecordAttempt = Extract<WebhookCommand, { type: "RecordAttempt" }>;

/** What the deliverer needs from the service around it. */
export interface DelivererDeps {
  /** The webhook as the view holds it now. */
  webhook(id: string): Webhook | undefined;
  /** The event's JSON body; undefined when the event is no longer in EVENTS. */
  bodyOf(eventId: string): Promise<string | undefined>;
  /** The webhook's signing secret, opened from its seal. */
  secretOf(hook: Webhook): string;
  /** Records an attempt and resolves once the view holds it. */
  record(webhookId: string, command: RecordAttempt): Promise<void>;
  policy: RetryPolicy;
  timeoutMs: number;
  /** Deliveries in flight to one webhook at once. */
  concurrency: number;
  allowPrivate: boolean;
  logger: Logger;
  registry?: Registry | undefined;
  now?: () => number;
  /**
   * Whether this instance sends now (it holds the delivery lease); a standby keeps its timers and
   * asks again every STANDBY_RECHECK_MS, so it takes over the pending deliveries when the lease
   * comes to it. Always, when absent.
   */
  maySend?: () => boolean;
}

/** How soon a standby instance looks again whether it may send a due delivery. */
const STANDBY_RECHECK_MS = 500;

const keyOf = (webhookId: string, eventId: string) => `${webhookId} ${eventId}`;

/**
 * Runs the pending deliveries the view holds: one timer per delivery, due at once for a new round
 * and after its backoff otherwise, so what was pending before a restart is taken up again from the
 * log alone. Each webhook has its own few slots, so a slow or dead receiver delays only itself.
 * An attempt is recorded after its POST: a crash in between sends the event again, with the same id.
 */
export class Deliverer {
  /** Deliveries scheduled, waiting for a slot or in flight. */
  private readonly active = new Map<string, NodeJS.Timeout | undefined>();
  private readonly inFlight = new Map<string, number>();
  private readonly waiting = new Map<string, Array<() => void>>();
  private readonly now: () => number;
  private readonly outcomes: Counter;
  private readonly seconds: Histogram;
  private stopped = false;

  constructor(private readonly deps: DelivererDeps) {
    this.now = deps.now ?? Date.now;
    const registers = deps.registry ? [deps.registry] : [];
    this.outcomes = new Counter({
      name: "hangar_webhook_attempts_total",
      help: "Webhook delivery attempts by outcome: delivered (2xx), failed, given_up (the last failed one)",
      labelNames: ["outcome"],
      registers,
    });
    this.seconds = new Histogram({
      name: "hangar_webhook_attempt_seconds",
      help: "How long a webhook receiver took to answer (or to fail)",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
  }

  /** Schedules every pending delivery of the webhook that is not already scheduled or in flight. */
  reconcile(hook: Webhook): void {
    if (this.stopped || hook.deleted) return;
    for (const d of hook.deliveries) {
      if (d.status === "pending" && !this.active.has(keyOf(hook.id, d.eventId))) this.schedule(hook.id, d);
    }
  }

  /** Deliveries scheduled or in flight now. */
  get pending(): number {
    return this.active.size;
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.active.values()) clearTimeout(timer);
    this.active.clear();
  }

  private schedule(webhookId: string, d: WebhookDelivery, notBeforeMs = 0): void {
    const key = keyOf(webhookId, d.eventId);
    const due = Math.max(nextAttemptAtMs(d, this.deps.policy), notBeforeMs);
    const timer = setTimeout(
      () => {
        if (this.deps.maySend && !this.deps.maySend()) {
          this.schedule(webhookId, d, this.now() + STANDBY_RECHECK_MS);
          return;
        }
        this.active.set(key, undefined);
        void this.attempt(webhookId, d.eventId);
      },
      Math.max(0, due - this.now()),
    );
    this.active.set(key, timer);
  }

  private async attempt(webhookId: string, eventId: string): Promise<void> {
    const key = keyOf(webhookId, eventId);
    await this.slot(webhookId);
    let retryAt: number | undefined;
    try {
      const hook = this.deps.webhook(webhookId);
      const d = hook?.deliveries.find((x) => x.eventId === eventId);
      if (this.stopped || !hook || hook.deleted || d?.status !== "pending") return;
      const outcome = await this.send(hook, eventId);
      const atMs = this.now();
      const giveUp = givesUp(d, atMs, this.deps.policy);
      const ok = outcome.statusCode >= 200 && outcome.statusCode <= 299;
      await this.deps.record(webhookId, { type: "RecordAttempt", eventId, ...outcome, atMs, giveUp });
      this.outcomes.inc({ outcome: ok ? "delivered" : giveUp ? "given_up" : "failed" });
      this.seconds.observe(outcome.durationMs / 1000);
    } catch (err) {
      // Recording failed (NATS away): the POST may be made again, with the same event id.
      this.deps.logger.warn({ err, webhook: webhookId, event_id: eventId }, "webhook attempt not recorded");
      retryAt = this.now() + this.deps.policy.initialMs;
    } finally {
      this.release(webhookId);
      this.active.delete(key);
      const hook = this.deps.webhook(webhookId);
      const d = hook?.deliveries.find((x) => x.eventId === eventId);
      if (!this.stopped && hook && !hook.deleted && d?.status === "pending")
        this.schedule(webhookId, d, retryAt);
    }
  }

  private async send(hook: Webhook, eventId: string): Promise<SendOutcome> {
    const body = await this.deps.bodyOf(eventId);
    if (body === undefined)
      return { statusCode: 0, error: "the event is no longer in the EVENTS stream", durationMs: 0 };
    const type = hook.deliveries.find((x) => x.eventId === eventId)?.eventType ?? "";
    return postDelivery(
      hook.url,
      body,
      {
        "content-type": "application/json",
        "user-agent": "hangar-webhooks/1",
        "x-hangar-event-id": eventId,
        "x-hangar-event-type": type,
        "x-hangar-webhook-id": hook.id,
        "x-hangar-signature": signatureHeader(this.deps.secretOf(hook), body, Math.floor(this.now() / 1000)),
      },
      { timeoutMs: this.deps.timeoutMs, allowPrivate: this.deps.allowPrivate },
    );
  }

  private slot(webhookId: string): Promise<void> {
    const used = this.inFlight.get(webhookId) ?? 0;
    if (used < this.deps.concurrency) {
      this.inFlight.set(webhookId, used + 1);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const queue = this.waiting.get(webhookId) ?? [];
      queue.push(resolve);
      this.waiting.set(webhookId, queue);
    });
  }

  private release(webhookId: string): void {
    const queue = this.waiting.get(webhookId);
    const next = queue?.shift();
    if (queue?.length === 0) this.waiting.delete(webhookId);
    if (next) {
      next(); // the slot passes on as it is
      return;
    }
    const used = (this.inFlight.get(webhookId) ?? 1) - 1;
    if (used <= 0) this.inFlight.delete(webhookId);
    else this.inFlight.set(webhookId, used);
  }
}
