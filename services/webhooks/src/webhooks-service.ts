import { randomBytes, randomUUID } from "node:crypto";
import { hostname } from "node:os";
import {
  type AppCommand,
  type AppEvent,
  type AppState,
  appDecider,
  appsStream,
  EVENT_TYPE_PATTERN,
  nextAttemptAtMs,
  type RetryPolicy,
  type Webhook,
  type WebhookCommand,
  type WebhookDelivery,
  type WebhookEvent,
  type WebhookState,
  webhookDecider,
  webhookMatches,
  webhooksStream,
  webhookUrlProblem,
} from "@hangar/domain";
import {
  EVENTS_STREAM,
  ensureEventsStream,
  eventsFilter,
  type FeedMessage,
  isPublicEventType,
  type OrgResolver,
  type PublicEvent,
  parseEventId,
  toPublicEvents,
} from "@hangar/event-feed";
import {
  CommandHandler,
  DomainError,
  type EventStore,
  ensureDurable,
  getStoredMessage,
  plantedDelivery,
  plantedStored,
} from "@hangar/eventstore";
import { acquireLease, type Lease } from "@hangar/lease";
import type { MasterKeys } from "@hangar/secrets";
import {
  AggregateView,
  CommandError,
  type HealthReport,
  handleThenWait,
  KeyedSerial,
  serveCommands,
  subjects,
  type WebhookCreatedReply,
  type WebhookCreateRequest,
  type WebhookDeliveryList,
  type WebhookDeliveryView,
  type WebhookList,
  type WebhookListRequest,
  type WebhookRedeliverRequest,
  type WebhookRef,
  type WebhookView,
} from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import {
  type ConsumerMessages,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { Gauge, type Registry } from "prom-client";
import { Deliverer } from "./deliverer.js";
import { newSigningSecret } from "./signing.js";
import { checkTarget, TargetRefusedError } from "./targets.js";

export interface WebhooksServiceOptions {
  nc: NatsConnection;
  store: EventStore;
  logger: Logger;
  registry?: Registry;
  /** Seals and opens the signing secrets; without them, creates are refused. */
  keys: MasterKeys | undefined;
  policy: RetryPolicy;
  timeoutMs: number;
  concurrency: number;
  /** HANGAR_WEBHOOKS_ALLOW_PRIVATE_TARGETS. */
  allowPrivate: boolean;
  /** Replicas of EVENTS when this service is the first to create it. */
  replicas?: number;
  /** This instance's name for the delivery lease (unique per live process). */
  holder?: string;
}

/** The lease only whose holder sends deliveries (libs/lease, bucket hangar-leases). */
export const DELIVERY_LEASE = "webhooks-deliveries";
const DELIVERY_LEASE_TTL_MS = 6_000;

/** The durable consumer of EVENTS the service queues deliveries from. */
export const FEED_CONSUMER = "webhooks";
/** Event bodies kept in memory for their retries; a body not kept is read from EVENTS again. */
const MAX_CACHED_BODIES = 10_000;
const FEED_BATCH = 64;
const NO_SUBJECT_APPS = "the EVENTS message's app could not be resolved";

const iso = (ms: number) => new Date(ms).toISOString();
const scopeOf = (id: string) => `webhook:${id}`;

function refuse(message: string, code: "invalid_argument" | "not_found" | "failed_precondition"): never {
  throw new CommandError(message, code);
}

function text(value: unknown, what: string): string {
  if (typeof value !== "string" || value === "")
    refuse(`${what} must be a non-empty string`, "invalid_argument");
  return value;
}

function viewOf(hook: Webhook): WebhookView {
  const count = (status: WebhookDelivery["status"]) =>
    hook.deliveries.filter((d) => d.status === status).length;
  return {
    id: hook.id,
    org: hook.org,
    app: hook.app === "" ? null : hook.app,
    url: hook.url,
    events: hook.eventTypes,
    created_at: iso(hook.createdAtMs),
    pending: count("pending"),
    delivered: count("delivered"),
    given_up: count("given_up"),
  };
}

function deliveryView(d: WebhookDelivery, policy: RetryPolicy): WebhookDeliveryView {
  return {
    event_id: d.eventId,
    event_type: d.eventType,
    status: d.status,
    queued_at: iso(d.queuedAtMs),
    attempts: d.attempts.map((a) => ({
      at: iso(a.atMs),
      status_code: a.statusCode === 0 ? null : a.statusCode,
      error: a.error === "" ? null : a.error,
      duration_ms: a.durationMs,
    })),
    next_attempt_at: d.status === "pending" ? iso(nextAttemptAtMs(d, policy)) : null,
  };
}

/**
 * EVENTS as it is, or made when this service starts before the gateway. The gateway owns its
 * configuration (it adds sources a newer platform feeds): this service never updates it.
 */
async function eventsStreamOf(jsm: JetStreamManager, replicas: number): Promise<string> {
  try {
    return (await jsm.streams.info(EVENTS_STREAM)).config.name;
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw err;
    return ensureEventsStream(jsm, { replicas });
  }
}

/**
 * The webhooks service (docs/webhooks.md): owns the WEBHOOKS stream, answers `cmd.webhooks.*` for
 * the gateway, queues a delivery for every EVENTS event a webhook matches (a durable consumer, at
 * least once) and runs the deliveries with their retries (Deliverer). Several instances may run:
 * they share the durable consumer's work, and only the holder of the delivery lease sends; the
 * others keep the same pending deliveries and send them once the lease comes to them.
 */
export class WebhooksService {
  private readonly handler: CommandHandler<WebhookState, WebhookCommand, WebhookEvent>;
  private readonly deliverer: Deliverer;
  private readonly bodies = new Map<string, string>();
  /** Creates and the feed take turns, so no event falls between a create's position and its view. */
  private readonly turns = new KeyedSerial();
  private subs: Subscription[] = [];
  private feed: ConsumerMessages | undefined;
  private feedDone: Promise<void> = Promise.resolve();
  private eventsStream = "";
  private stopped = false;
  private lease: Lease | undefined;

  private constructor(
    private readonly opts: WebhooksServiceOptions,
    private readonly hooks: AggregateView<WebhookState, WebhookCommand, WebhookEvent>,
    private readonly apps: AggregateView<AppState, AppCommand, AppEvent>,
  ) {
    this.handler = new CommandHandler(opts.store, webhooksStream, webhookDecider);
    this.deliverer = new Deliverer({
      webhook: (id) => this.hooks.get(id) ?? undefined,
      bodyOf: (eventId) => this.bodyOf(eventId),
      secretOf: (hook) => this.secretOf(hook),
      record: async (id, command) => {
        await handleThenWait(this.handler, this.hooks, id, command, { commandId: this.commandId("attempt") });
      },
      policy: opts.policy,
      timeoutMs: opts.timeoutMs,
      concurrency: opts.concurrency,
      allowPrivate: opts.allowPrivate,
      logger: opts.logger,
      registry: opts.registry,
      maySend: () => this.lease?.isHeld() ?? false,
    });
    const service = this;
    new Gauge({
      name: "hangar_webhook_deliveries_pending",
      help: "Webhook deliveries waiting for an attempt or in flight",
      registers: opts.registry ? [opts.registry] : [],
      collect() {
        this.set(service.deliverer.pending);
      },
    });
  }

  /** Rebuilds the webhooks and apps from their streams, takes up pending deliveries, then serves. */
  static async start(opts: WebhooksServiceOptions): Promise<WebhooksService> {
    const apps = await AggregateView.start(opts.store, appsStream, appDecider);
    const hooks = AggregateView.create(opts.store, webhooksStream, webhookDecider);
    const service = new WebhooksService(opts, hooks, apps);
    hooks.subscribe((change) => {
      if (change.live && change.state) service.deliverer.reconcile(change.state);
    });
    await hooks.follow();
    await Promise.all([apps.caughtUp, hooks.caughtUp]);
    for (const [, hook] of hooks.entries()) if (hook) service.deliverer.reconcile(hook);
    service.lease = await acquireLease(opts.nc, {
      name: DELIVERY_LEASE,
      holder: opts.holder ?? `webhooks-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
      ttlMs: DELIVERY_LEASE_TTL_MS,
      replicas: opts.replicas ?? 1,
      onAcquired: () => opts.logger.info("holds the webhook delivery lease: sending deliveries"),
      onLost: (reason) => opts.logger.warn({ reason }, "lost the webhook delivery lease"),
      onError: (err) => opts.logger.warn({ err }, "webhook delivery lease"),
    });
    service.eventsStream = await eventsStreamOf(opts.store.jsm, opts.replicas ?? 1);
    await service.startFeed();
    service.serve();
    // Started means answering: the server has the command subscriptions before start resolves.
    await opts.nc.flush();
    return service;
  }

  /** Whether this instance holds the delivery lease, so it is the one sending. */
  sending(): boolean {
    return this.lease?.isHeld() ?? false;
  }

  health(): HealthReport {
    return { ok: !this.stopped };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.subs) s.unsubscribe();
    this.deliverer.stop();
    await this.lease?.release();
    await this.feed?.close();
    await this.feedDone;
    await this.hooks.stop();
    await this.apps.stop();
  }

  private serve(): void {
    const onInternal = (err: unknown) => this.opts.logger.error({ err }, "webhooks command failed");
    const on = <Q, R>(subject: string, handle: (req: Q) => Promise<R>) =>
      this.subs.push(serveCommands<Q, R>(this.opts.nc, subject, "webhooks", handle, onInternal));
    on(subjects.webhooks.create, (req: WebhookCreateRequest) => this.create(req));
    on(subjects.webhooks.list, async (req: WebhookListRequest): Promise<WebhookList> => {
      const org = text(req?.org, "org");
      const webhooks: WebhookView[] = [];
      for (const [, hook] of this.hooks.entries())
        if (hook && !hook.deleted && hook.org === org) webhooks.push(viewOf(hook));
      return { webhooks: webhooks.sort((a, b) => a.created_at.localeCompare(b.created_at)) };
    });
    on(subjects.webhooks.get, async (req: WebhookRef) => viewOf(this.existing(req)));
    on(subjects.webhooks.delete, async (req: WebhookRef) => {
      const hook = this.existing(req);
      await handleThenWait(
        this.handler,
        this.hooks,
        hook.id,
        { type: "DeleteWebhook", atMs: Date.now() },
        {
          commandId: this.commandId("delete"),
        },
      );
      return {};
    });
    on(subjects.webhooks.deliveries, async (req: WebhookRef): Promise<WebhookDeliveryList> => {
      const hook = this.existing(req);
      return { deliveries: hook.deliveries.map((d) => deliveryView(d, this.opts.policy)).reverse() };
    });
    on(subjects.webhooks.redeliver, async (req: WebhookRedeliverRequest) => {
      const hook = this.existing(req);
      const eventId = text(req.event_id, "event_id");
      await handleThenWait(
        this.handler,
        this.hooks,
        hook.id,
        { type: "RequestRedelivery", eventId, atMs: Date.now() },
        { commandId: this.commandId("redeliver") },
      );
      const d = this.hooks.get(hook.id)?.deliveries.find((x) => x.eventId === eventId);
      if (!d) refuse(`webhook ${hook.id} has no delivery of event ${eventId}`, "not_found");
      return deliveryView(d, this.opts.policy);
    });
  }

  /** A webhook of the request's org; another org's, a deleted or an unknown one is not found. */
  private existing(req: WebhookRef): Webhook {
    const org = text(req?.org, "org");
    const id = text(req.id, "id");
    const hook = this.hooks.get(id);
    if (!hook || hook.deleted || hook.org !== org) refuse(`webhook ${id} not found`, "not_found");
    return hook;
  }

  private async create(req: WebhookCreateRequest): Promise<WebhookCreatedReply> {
    const keys = this.opts.keys;
    if (!keys)
      refuse(
        "webhooks need the secrets master key (HANGAR_SECRETS_KEY) to seal their signing secrets",
        "failed_precondition",
      );
    const org = text(req?.org, "org");
    const url = text(req.url, "url");
    const app = req.app === undefined || req.app === null ? "" : text(req.app, "app");
    if (
      !Array.isArray(req.events) ||
      req.events.some((t) => typeof t !== "string" || !EVENT_TYPE_PATTERN.test(t))
    )
      refuse("events must be a list of event types such as machine.started", "invalid_argument");
    const unknown = req.events.filter((t) => !isPublicEventType(t));
    if (unknown.length > 0)
      refuse(`unknown event types ${unknown.join(", ")} (docs/events.md lists them)`, "invalid_argument");
    const problem = webhookUrlProblem(url);
    if (problem) refuse(problem, "invalid_argument");
    try {
      await checkTarget(new URL(url), this.opts.allowPrivate);
    } catch (err) {
      if (err instanceof TargetRefusedError) refuse(err.message, "invalid_argument");
      throw err;
    }
    const id = `wh_${randomBytes(8).toString("hex")}`;
    const secret = newSigningSecret();
    const sealed = keys.wrap(Buffer.from(secret, "utf8"), scopeOf(id));
    await this.turns.run("feed", async () => {
      const afterSeq = (await this.opts.store.jsm.streams.info(this.eventsStream)).state.last_seq;
      await handleThenWait(
        this.handler,
        this.hooks,
        id,
        {
          type: "CreateWebhook",
          id,
          org,
          app,
          url,
          eventTypes: [...new Set(req.events)],
          masterKeyId: sealed.keyId,
          sealedSecret: sealed.wrapped,
          afterSeq,
          atMs: Date.now(),
        },
        { commandId: `create-${id}` },
      );
    });
    const hook = this.hooks.get(id);
    if (!hook) throw new DomainError(`webhook ${id} was recorded but is not in the view`, "unavailable");
    return { ...viewOf(hook), secret };
  }

  private secretOf(hook: Webhook): string {
    if (!this.opts.keys) throw new Error("no secrets master key to open the signing secret with");
    return Buffer.from(
      this.opts.keys.unwrap({ keyId: hook.masterKeyId, wrapped: hook.sealedSecret }, scopeOf(hook.id)),
    ).toString("utf8");
  }

  private commandId(what: string): string {
    return `${what}-${randomBytes(8).toString("hex")}`;
  }

  private readonly resolver: OrgResolver = {
    orgOfApp: (app) => {
      const a = this.apps.get(app);
      return a && a.status !== "absent" ? a.orgSlug : undefined;
    },
    // A Postgres cluster is an app of the same name.
    orgOfCluster: (cluster) => this.resolver.orgOfApp(cluster),
  };

  /**
   * The public events of an EVENTS message. An app the APPS view does not know yet (the feed can be
   * a moment ahead of it) is looked up again once the view has read what APPS holds now.
   */
  private async publicEvents(msg: FeedMessage): Promise<PublicEvent[]> {
    const events = toPublicEvents(msg, this.resolver);
    if (!events.some((e) => e.org === null && e.app !== null)) return events;
    const last = (await this.opts.store.jsm.streams.info(appsStream.name)).state.last_seq;
    await this.apps.waitForSeq(last).catch((err: unknown) => {
      this.opts.logger.warn({ err, seq: msg.seq }, NO_SUBJECT_APPS);
    });
    return toPublicEvents(msg, this.resolver);
  }

  private remember(eventId: string, body: string): void {
    this.bodies.delete(eventId);
    this.bodies.set(eventId, body);
    if (this.bodies.size > MAX_CACHED_BODIES) {
      const oldest = this.bodies.keys().next().value;
      if (oldest !== undefined) this.bodies.delete(oldest);
    }
  }

  /** An event's body: kept since it was queued, or read again from EVENTS by its sequence. */
  private async bodyOf(eventId: string): Promise<string | undefined> {
    const kept = this.bodies.get(eventId);
    if (kept !== undefined) return kept;
    const position = parseEventId(eventId);
    if (!position) return undefined;
    // A message no longer in EVENTS is null; any other failure is thrown, and the attempt retried.
    const m = await getStoredMessage(this.opts.store.jsm, this.eventsStream, { seq: position.seq });
    if (!m) return undefined;
    const msg: FeedMessage = {
      seq: m.seq,
      subject: m.subject,
      data: m.data,
      headers: m.header,
      planted: plantedStored(m),
    };
    const event = (await this.publicEvents(msg)).find((e) => e.id === eventId);
    if (!event) return undefined;
    const body = JSON.stringify(event);
    this.remember(eventId, body);
    return body;
  }

  /** Queues one EVENTS message's events for the webhooks they match. */
  private async queue(msg: FeedMessage): Promise<void> {
    const events = await this.publicEvents(msg);
    for (const event of events) {
      for (const [id, hook] of this.hooks.entries()) {
        if (
          !hook ||
          !webhookMatches(hook, { seq: msg.seq, type: event.type, app: event.app, org: event.org })
        )
          continue;
        this.remember(event.id, JSON.stringify(event));
        await handleThenWait(
          this.handler,
          this.hooks,
          id,
          { type: "QueueDelivery", eventId: event.id, seq: msg.seq, eventType: event.type, atMs: Date.now() },
          { commandId: `queue-${id}-${event.id}` },
        );
      }
    }
  }

  /**
   * The durable consumer on EVENTS: made at the stream's end the first time (events before any
   * webhook matter to none), then it goes on where it was. A message is acknowledged once its
   * deliveries are queued; one that failed comes back after a second.
   */
  private async startFeed(): Promise<void> {
    const { jsm, js } = this.opts.store;
    const last = (await jsm.streams.info(this.eventsStream)).state.last_seq;
    await ensureDurable(jsm, this.eventsStream, {
      name: FEED_CONSUMER,
      filter: eventsFilter(),
      batchSize: FEED_BATCH,
      afterSeq: last,
    });
    const consumer = await js.consumers.get(this.eventsStream, FEED_CONSUMER);
    const messages = await consumer.consume({ max_messages: FEED_BATCH });
    this.feed = messages;
    this.feedDone = (async () => {
      for await (const m of messages) {
        try {
          await this.turns.run("feed", () =>
            this.queue({
              seq: m.seq,
              subject: m.subject,
              data: m.data,
              headers: m.headers,
              planted: plantedDelivery(m),
            }),
          );
          m.ack();
        } catch (err) {
          if (this.stopped) return;
          this.opts.logger.warn({ err, seq: m.seq }, "webhook deliveries not queued; the event comes back");
          m.nak(1_000);
        }
      }
    })().catch((err: unknown) => {
      // The consumer's iterator ended with an error (a refused pull, missed heartbeats): the feed
      // starts again on the durable consumer a second later, where it was, instead of the
      // rejection ending the service.
      if (this.stopped) return;
      this.opts.logger.warn({ err }, "the webhooks event feed stopped; starting it again");
      setTimeout(() => {
        if (!this.stopped)
          this.startFeed().catch((e: unknown) =>
            this.opts.logger.error({ err: e }, "the webhooks event feed did not start again"),
          );
      }, 1_000).unref();
    });
  }
}
