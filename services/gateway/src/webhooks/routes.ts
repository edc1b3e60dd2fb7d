import { parseEventId } from "@hangar/event-feed";
import type { WebhookView } from "@hangar/service";
import { type Context, Hono } from "hono";
import { authorizeApp, authorizeOrg, coversApp, coversOrg, principalOf } from "../http/authz.js";
import { readBody } from "../http/body.js";
import { type ApiEnv, requestContext } from "../http/context.js";
import { ApiError } from "../http/errors.js";
import { CreateWebhookRequestSchema, type WebhooksBackend } from "./api.js";

/**
 * The org a webhook call acts in: `?org=`, else the token's, else `personal` (as the postgres
 * routes). One the token does not cover is a 404, as an org that does not exist.
 */
function orgOf(c: Context<ApiEnv>): string {
  const p = principalOf(c);
  const org = c.req.query("org") || p.org || "personal";
  if (!coversOrg(p, org) || !c.get("orgs").exists(org))
    throw ApiError.of("not_found", `org ${org} not found`);
  return org;
}

/** Whether the token may see the webhook: an app-scoped token sees its apps' webhooks only, never org-wide ones. */
function visible(c: Context<ApiEnv>, hook: WebhookView): boolean {
  const p = principalOf(c);
  return hook.app === null ? p.apps === undefined : coversApp(p, hook.org, hook.app);
}

/** Checks the token may change the webhook: write access to its app, or to its org for an org-wide one. */
function authorizeChange(c: Context<ApiEnv>, hook: WebhookView): void {
  if (hook.app === null) authorizeOrg(c, hook.org, "write");
  else authorizeApp(c, hook.app, "write");
}

/**
 * Webhooks (docs/webhooks.md): `POST /webhooks`, `GET /webhooks`, `GET|DELETE /webhooks/{id}`,
 * `GET /webhooks/{id}/deliveries`, `POST /webhooks/{id}/deliveries/{event_id}/redeliver`. Members of
 * the org may read; changes need write access to the webhook's app (or, for an org-wide webhook, the
 * org), so read-only tokens list but never create, delete or redeliver. Another org's webhook, or one
 * the token's app caveat hides, is a 404.
 */
export function webhookRoutes(backend: WebhooksBackend): Hono<ApiEnv> {
  const hookFor = async (c: Context<ApiEnv>): Promise<WebhookView> => {
    const org = orgOf(c);
    const id = c.req.param("id") ?? "";
    const hook = await backend.get(org, id, requestContext(c));
    if (!visible(c, hook)) throw ApiError.of("not_found", `webhook ${id} not found`);
    return hook;
  };
  return new Hono<ApiEnv>()
    .post("/webhooks", async (c) => {
      const org = orgOf(c);
      const input = await readBody(c, CreateWebhookRequestSchema);
      if (input.app) {
        if (authorizeApp(c, input.app, "write").org !== org)
          throw ApiError.of("not_found", `app ${input.app} not found`);
      } else authorizeOrg(c, org, "write");
      const made = await backend.create(
        { org, url: input.url, events: input.events, ...(input.app ? { app: input.app } : {}) },
        requestContext(c),
      );
      // The secret is in this answer only: it is stored sealed and never shown again.
      return c.json(made, 201);
    })
    .get("/webhooks", async (c) => {
      const org = orgOf(c);
      const hooks = await backend.list(org, requestContext(c));
      return c.json({ webhooks: hooks.filter((h) => visible(c, h)) });
    })
    .get("/webhooks/:id", async (c) => c.json(await hookFor(c)))
    .delete("/webhooks/:id", async (c) => {
      const hook = await hookFor(c);
      authorizeChange(c, hook);
      await backend.delete(hook.org, hook.id, requestContext(c));
      return c.json({ id: hook.id, deleted: true });
    })
    .get("/webhooks/:id/deliveries", async (c) => {
      const hook = await hookFor(c);
      return c.json({ deliveries: await backend.deliveries(hook.org, hook.id, requestContext(c)) });
    })
    .post("/webhooks/:id/deliveries/:event_id/redeliver", async (c) => {
      const hook = await hookFor(c);
      authorizeChange(c, hook);
      const eventId = c.req.param("event_id") ?? "";
      if (!parseEventId(eventId))
        throw ApiError.of(
          "invalid_argument",
          `invalid event id ${JSON.stringify(eventId)}: expected <seq> or <seq>.<index>`,
        );
      return c.json(await backend.redeliver(hook.org, hook.id, eventId, requestContext(c)), 202);
    });
}
