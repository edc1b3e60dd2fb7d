import { AppNameSchema } from "@hangar/config";
import { EVENT_TYPE_PATTERN } from "@hangar/domain";
import type {
  WebhookCreatedReply,
  WebhookCreateRequest,
  WebhookDeliveryView,
  WebhookView,
} from "@hangar/service";
import { z } from "zod";
import type { RequestContext } from "../http/backend.js";

/**
 * `POST /v1/webhooks`: where to send which events, for one app of the org or (no app) all of them.
 * The webhooks service checks the rest: known event types, the URL's scheme and where it resolves.
 */
export const CreateWebhookRequestSchema = z.looseObject({
  url: z.string().min(1).max(2048),
  events: z
    .array(z.string().regex(EVENT_TYPE_PATTERN, "expected event types such as machine.started"))
    .min(1, "name at least one event type")
    .max(64),
  app: AppNameSchema.nullish(),
});
export type CreateWebhookRequest = z.output<typeof CreateWebhookRequestSchema>;

/** The webhooks service, as the routes use it (over cmd.webhooks.*). */
export interface WebhooksBackend {
  create(req: WebhookCreateRequest, ctx: RequestContext): Promise<WebhookCreatedReply>;
  list(org: string, ctx: RequestContext): Promise<WebhookView[]>;
  get(org: string, id: string, ctx: RequestContext): Promise<WebhookView>;
  delete(org: string, id: string, ctx: RequestContext): Promise<void>;
  deliveries(org: string, id: string, ctx: RequestContext): Promise<WebhookDeliveryView[]>;
  redeliver(org: string, id: string, eventId: string, ctx: RequestContext): Promise<WebhookDeliveryView>;
}
