// The webhooks service's command messages (subjects.webhooks, docs/webhooks.md). JSON, snake_case,
// as the API answers them: the gateway passes the views through.

/** `cmd.webhooks.create`: a webhook of `org`, for one app or (none) every app of the org. */
export interface WebhookCreateRequest {
  org: string;
  app?: string;
  url: string;
  /** Public event types; empty means every type. */
  events: string[];
}

/** A webhook as the API shows it; never its secret. */
export interface WebhookView {
  id: string;
  org: string;
  app: string | null;
  url: string;
  events: string[];
  created_at: string;
  /** Deliveries in the log by status. */
  pending: number;
  delivered: number;
  given_up: number;
}

/** The create's answer: the webhook and its signing secret, shown this once. */
export interface WebhookCreatedReply extends WebhookView {
  secret: string;
}

/** `cmd.webhooks.list`: the webhooks of an org. */
export interface WebhookListRequest {
  org: string;
}

export interface WebhookList {
  webhooks: WebhookView[];
}

/** One webhook of `org` (`get`, `delete`, `deliveries`); another org's is not found. */
export interface WebhookRef {
  org: string;
  id: string;
}

/** `cmd.webhooks.redeliver`: a finished delivery of the webhook, tried again. */
export interface WebhookRedeliverRequest extends WebhookRef {
  event_id: string;
}

/** One POST of an event. */
export interface WebhookAttemptView {
  at: string;
  /** The HTTP status; null when no answer came (see error). */
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

/** One event's delivery to a webhook. */
export interface WebhookDeliveryView {
  event_id: string;
  event_type: string;
  status: "pending" | "delivered" | "given_up";
  queued_at: string;
  attempts: WebhookAttemptView[];
  /** When the next attempt is due; null unless pending. */
  next_attempt_at: string | null;
}

/** The delivery log, newest first. */
export interface WebhookDeliveryList {
  deliveries: WebhookDeliveryView[];
}
