import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";

const messages = {
  WebhookCreated: hangar.v1.WebhookCreated,
  WebhookDeleted: hangar.v1.WebhookDeleted,
  WebhookDeliveryQueued: hangar.v1.WebhookDeliveryQueued,
  WebhookDeliveryAttempted: hangar.v1.WebhookDeliveryAttempted,
  WebhookDeliveryDelivered: hangar.v1.WebhookDeliveryDelivered,
  WebhookDeliveryGivenUp: hangar.v1.WebhookDeliveryGivenUp,
  WebhookRedeliveryRequested: hangar.v1.WebhookRedeliveryRequested,
};

/** A webhook event. */
export type WebhookEvent = EventOf<typeof messages>;

/** The WEBHOOKS stream: one subject per webhook, `ev.webhook.<id>`, holding it and its delivery log. */
export const webhooksStream = defineStream({
  name: "WEBHOOKS",
  subjectPrefix: "ev.webhook",
  codec: eventCodec(messages),
});

/** A webhook id: `wh_` and 16 hex digits (a plain subject token). */
export const WEBHOOK_ID_PATTERN = /^wh_[0-9a-f]{16}$/;
/** A public event type as webhooks filter on it: `<aggregate>.<event>`, e.g. "machine.started". */
export const EVENT_TYPE_PATTERN = /^[a-z][a-z_]*\.[a-z][a-z_]*$/;
/** Finished deliveries kept in a webhook's log (and so in its state); pending ones are always kept. */
export const MAX_LOGGED_DELIVERIES = 500;

/** One POST of an event to the webhook's URL. */
export interface DeliveryAttempt {
  atMs: number;
  /** The HTTP status, 0 when none came (the error says why). */
  statusCode: number;
  error: string;
  durationMs: number;
}

/** One event's delivery to a webhook: its attempts and where it stands. */
export interface WebhookDelivery {
  /** The public event's id: "<EVENTS seq>" or "<seq>.<index>". */
  eventId: string;
  eventType: string;
  queuedAtMs: number;
  status: "pending" | "delivered" | "given_up";
  /** When the current round began: queued, or the last redelivery asked for. */
  roundStartMs: number;
  /** Attempts made in the current round (the backoff counts these). */
  roundAttempts: number;
  attempts: DeliveryAttempt[];
}

/** A webhook as recorded. The secret is only ever held sealed. */
export interface Webhook {
  id: string;
  org: string;
  /** "" for every app of the org. */
  app: string;
  url: string;
  /** None: every type. */
  eventTypes: string[];
  masterKeyId: string;
  sealedSecret: Uint8Array;
  /** Events of EVENTS messages after this sequence are delivered. */
  afterSeq: number;
  createdAtMs: number;
  deleted: boolean;
  /** Oldest first. */
  deliveries: WebhookDelivery[];
}

export type WebhookState = Webhook | null;

export type WebhookCommand =
  | {
      type: "CreateWebhook";
      id: string;
      org: string;
      app: string;
      url: string;
      eventTypes: string[];
      masterKeyId: string;
      sealedSecret: Uint8Array;
      afterSeq: number;
      atMs: number;
    }
  | { type: "DeleteWebhook"; atMs: number }
  | { type: "QueueDelivery"; eventId: string; seq: number; eventType: string; atMs: number }
  | {
      type: "RecordAttempt";
      eventId: string;
      statusCode: number;
      error: string;
      durationMs: number;
      atMs: number;
      /** Whether a failed attempt ends the round (the service's retry policy says so). */
      giveUp: boolean;
    }
  | { type: "RequestRedelivery"; eventId: string; atMs: number };

/** The retry schedule: the first retry after `initialMs`, doubling up to `maxMs`, for `giveUpAfterMs`. */
export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
  giveUpAfterMs: number;
}

/** The wait after the `n`th failed attempt of a round (n >= 1): initial × 2^(n-1), capped. */
export function retryDelayMs(policy: RetryPolicy, n: number): number {
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, n - 1));
}

/** When a pending delivery's next attempt is due: at once for a new round, else after its backoff. */
export function nextAttemptAtMs(delivery: WebhookDelivery, policy: RetryPolicy): number {
  if (delivery.roundAttempts === 0) return delivery.roundStartMs;
  const last = delivery.attempts[delivery.attempts.length - 1];
  return (last?.atMs ?? delivery.roundStartMs) + retryDelayMs(policy, delivery.roundAttempts);
}

/** Whether a failed attempt at `atMs` ends the round: its next attempt would come after the give-up time. */
export function givesUp(delivery: WebhookDelivery, atMs: number, policy: RetryPolicy): boolean {
  const next = atMs + retryDelayMs(policy, delivery.roundAttempts + 1);
  return next - delivery.roundStartMs > policy.giveUpAfterMs;
}

/** Whether a public event goes to this webhook: same org, its app (or any), one of its types (or any). */
export function webhookMatches(
  hook: Webhook,
  event: { seq: number; type: string; app: string | null; org: string | null },
): boolean {
  if (hook.deleted || event.seq <= hook.afterSeq || event.org !== hook.org) return false;
  if (hook.app !== "" && event.app !== hook.app) return false;
  return hook.eventTypes.length === 0 || hook.eventTypes.includes(event.type);
}

/** Why a webhook URL is refused on its face (scheme, credentials, length); undefined when it is fine. */
export function webhookUrlProblem(url: string): string | undefined {
  if (url.length > 2048) return "url is longer than 2048 characters";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `url ${JSON.stringify(url)} is not a URL`;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return "url must be http:// or https://";
  if (parsed.username !== "" || parsed.password !== "") return "url must not carry a user or password";
  return undefined;
}

function invalid(message: string): never {
  throw new DomainError(message, "invalid_argument");
}

function existing(state: WebhookState): Webhook {
  if (state === null || state.deleted) throw new DomainError("webhook not found", "not_found");
  return state;
}

function deliveryOf(hook: Webhook, eventId: string): WebhookDelivery {
  const d = hook.deliveries.find((x) => x.eventId === eventId);
  if (!d) throw new DomainError(`webhook ${hook.id} has no delivery of event ${eventId}`, "not_found");
  return d;
}

function withDelivery(
  hook: Webhook,
  eventId: string,
  change: (d: WebhookDelivery) => WebhookDelivery,
): Webhook {
  return {
    ...hook,
    deliveries: hook.deliveries.map((d) => (d.eventId === eventId ? change(d) : d)),
  };
}

/** Drops the oldest finished deliveries beyond MAX_LOGGED_DELIVERIES; pending ones stay. */
function trimmed(deliveries: WebhookDelivery[]): WebhookDelivery[] {
  let finished = deliveries.filter((d) => d.status !== "pending").length;
  if (finished <= MAX_LOGGED_DELIVERIES) return deliveries;
  return deliveries.filter((d) => {
    if (d.status === "pending" || finished <= MAX_LOGGED_DELIVERIES) return true;
    finished -= 1;
    return false;
  });
}

/**
 * One webhook and its delivery log. A delivery is queued once per event (queueing it again is a
 * no-op, so a redelivered feed message changes nothing), attempted until a 2xx or until the service's
 * retry policy gives up, and may be asked for again once finished.
 */
export const webhookDecider: Decider<WebhookState, WebhookCommand, WebhookEvent> = {
  initialState: () => null,
  decide(command, state) {
    switch (command.type) {
      case "CreateWebhook": {
        if (state !== null) throw new DomainError(`webhook ${command.id} already exists`, "already_exists");
        if (!WEBHOOK_ID_PATTERN.test(command.id)) invalid(`invalid webhook id ${JSON.stringify(command.id)}`);
        if (command.org === "") invalid("a webhook needs an org");
        const problem = webhookUrlProblem(command.url);
        if (problem) invalid(problem);
        for (const t of command.eventTypes)
          if (!EVENT_TYPE_PATTERN.test(t)) invalid(`invalid event type ${JSON.stringify(t)}`);
        if (command.masterKeyId === "" || command.sealedSecret.length === 0)
          invalid("a webhook needs its sealed signing secret");
        const { type: _, ...data } = command;
        return [{ type: "WebhookCreated", data }];
      }
      case "DeleteWebhook":
        existing(state);
        return [{ type: "WebhookDeleted", data: { atMs: command.atMs } }];
      case "QueueDelivery": {
        // The feed is read at least once: an event already queued, or one for a webhook gone, is a no-op.
        if (state === null || state.deleted || command.seq <= state.afterSeq) return [];
        if (state.deliveries.some((d) => d.eventId === command.eventId)) return [];
        const { eventId, eventType, atMs } = command;
        return [{ type: "WebhookDeliveryQueued", data: { eventId, eventType, atMs } }];
      }
      case "RecordAttempt": {
        const hook = existing(state);
        const d = deliveryOf(hook, command.eventId);
        if (d.status !== "pending")
          throw new DomainError(
            `the delivery of event ${command.eventId} is ${d.status}`,
            "failed_precondition",
          );
        const { eventId, statusCode, error, durationMs, atMs } = command;
        const attempted: WebhookEvent = {
          type: "WebhookDeliveryAttempted",
          data: { eventId, statusCode, error, durationMs, atMs },
        };
        if (statusCode >= 200 && statusCode <= 299)
          return [attempted, { type: "WebhookDeliveryDelivered", data: { eventId, atMs } }];
        if (command.giveUp) return [attempted, { type: "WebhookDeliveryGivenUp", data: { eventId, atMs } }];
        return [attempted];
      }
      case "RequestRedelivery": {
        const hook = existing(state);
        const d = deliveryOf(hook, command.eventId);
        if (d.status === "pending")
          throw new DomainError(
            `event ${command.eventId} is still being delivered to webhook ${hook.id}`,
            "failed_precondition",
          );
        return [
          { type: "WebhookRedeliveryRequested", data: { eventId: command.eventId, atMs: command.atMs } },
        ];
      }
    }
  },
  evolve(state, event) {
    if (event.type === "WebhookCreated") {
      const d = event.data;
      return {
        id: d.id ?? "",
        org: d.org ?? "",
        app: d.app ?? "",
        url: d.url ?? "",
        eventTypes: [...(d.eventTypes ?? [])],
        masterKeyId: d.masterKeyId ?? "",
        sealedSecret: d.sealedSecret ?? new Uint8Array(),
        afterSeq: Number(d.afterSeq ?? 0),
        createdAtMs: Number(d.atMs ?? 0),
        deleted: false,
        deliveries: [],
      };
    }
    if (state === null) return state;
    switch (event.type) {
      case "WebhookDeleted":
        return { ...state, deleted: true };
      case "WebhookDeliveryQueued": {
        const d = event.data;
        const at = Number(d.atMs ?? 0);
        const delivery: WebhookDelivery = {
          eventId: d.eventId ?? "",
          eventType: d.eventType ?? "",
          queuedAtMs: at,
          status: "pending",
          roundStartMs: at,
          roundAttempts: 0,
          attempts: [],
        };
        return { ...state, deliveries: trimmed([...state.deliveries, delivery]) };
      }
      case "WebhookDeliveryAttempted": {
        const d = event.data;
        const attempt: DeliveryAttempt = {
          atMs: Number(d.atMs ?? 0),
          statusCode: d.statusCode ?? 0,
          error: d.error ?? "",
          durationMs: d.durationMs ?? 0,
        };
        return withDelivery(state, d.eventId ?? "", (x) => ({
          ...x,
          roundAttempts: x.roundAttempts + 1,
          attempts: [...x.attempts, attempt],
        }));
      }
      case "WebhookDeliveryDelivered":
      case "WebhookDeliveryGivenUp": {
        const status = event.type === "WebhookDeliveryDelivered" ? "delivered" : "given_up";
        const next = withDelivery(state, event.data.eventId ?? "", (x) => ({ ...x, status }));
        return { ...next, deliveries: trimmed(next.deliveries) };
      }
      case "WebhookRedeliveryRequested":
        return withDelivery(state, event.data.eventId ?? "", (x) => ({
          ...x,
          status: "pending",
          roundStartMs: Number(event.data.atMs ?? 0),
          roundAttempts: 0,
        }));
    }
  },
};
