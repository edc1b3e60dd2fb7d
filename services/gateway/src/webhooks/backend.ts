import {
  sendCommand,
  subjects,
  type WebhookCreatedReply,
  type WebhookCreateRequest,
  type WebhookDeliveryList,
  type WebhookDeliveryView,
  type WebhookList,
  type WebhookView,
} from "@hangar/service";
import type { NatsConnection } from "@nats-io/transport-node";
import type { WebhooksBackend } from "./api.js";

/** A create resolves the URL's host; the rest read the service's memory. */
const TIMEOUT_MS = 10_000;

/**
 * The webhook routes over the webhooks service's commands (request/reply). Only the gateway's NATS
 * user may ask them (nats-permissions.ts); it has authorized the caller against the org first.
 */
export class NatsWebhooksBackend implements WebhooksBackend {
  constructor(private readonly nc: NatsConnection) {}

  create(req: WebhookCreateRequest): Promise<WebhookCreatedReply> {
    return sendCommand(this.nc, subjects.webhooks.create, req, TIMEOUT_MS);
  }

  async list(org: string): Promise<WebhookView[]> {
    return (await sendCommand<unknown, WebhookList>(this.nc, subjects.webhooks.list, { org }, TIMEOUT_MS))
      .webhooks;
  }

  get(org: string, id: string): Promise<WebhookView> {
    return sendCommand(this.nc, subjects.webhooks.get, { org, id }, TIMEOUT_MS);
  }

  async delete(org: string, id: string): Promise<void> {
    await sendCommand(this.nc, subjects.webhooks.delete, { org, id }, TIMEOUT_MS);
  }

  async deliveries(org: string, id: string): Promise<WebhookDeliveryView[]> {
    const list = await sendCommand<unknown, WebhookDeliveryList>(
      this.nc,
      subjects.webhooks.deliveries,
      { org, id },
      TIMEOUT_MS,
    );
    return list.deliveries;
  }

  redeliver(org: string, id: string, eventId: string): Promise<WebhookDeliveryView> {
    return sendCommand(this.nc, subjects.webhooks.redeliver, { org, id, event_id: eventId }, TIMEOUT_MS);
  }
}
