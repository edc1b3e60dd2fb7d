import { EVENT_TYPE_PATTERN } from "@hangar/domain";
import { type Command, InvalidArgumentError } from "commander";
import { type Context, printJson } from "../context.js";
import { formatTable } from "../table.js";

/** A webhook as `GET /v1/webhooks` lists it. */
export interface WebhookInfo {
  id: string;
  org: string;
  app: string | null;
  url: string;
  events: string[];
  created_at: string;
  pending: number;
  delivered: number;
  given_up: number;
}

/** One event's delivery, as `GET /v1/webhooks/{id}/deliveries` lists them (newest first). */
export interface WebhookDelivery {
  event_id: string;
  event_type: string;
  status: "pending" | "delivered" | "given_up";
  queued_at: string;
  attempts: Array<{ at: string; status_code: number | null; error: string | null; duration_ms: number }>;
  next_attempt_at: string | null;
}

/** `--events a,b`: public event types (docs/events.md), refused before any call when malformed. */
export function eventTypes(value: string): string[] {
  const types = value
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
  const bad = types.filter((t) => !EVENT_TYPE_PATTERN.test(t));
  if (types.length === 0 || bad.length > 0)
    throw new InvalidArgumentError(
      `expected event types such as machine.started,release.created${bad.length > 0 ? ` (not: ${bad.join(", ")})` : ""}`,
    );
  return types;
}

const time = (iso: string) => iso.replace("T", " ").replace(/\.\d+Z$/, "Z");

/** The table of `hangar webhooks list`. */
export function webhooksTable(hooks: readonly WebhookInfo[]): string {
  return formatTable(
    ["ID", "APP", "URL", "EVENTS", "PENDING", "DELIVERED", "GIVEN UP", "CREATED"],
    hooks.map((h) => [
      h.id,
      h.app ?? "(all)",
      h.url,
      h.events.join(","),
      String(h.pending),
      String(h.delivered),
      String(h.given_up),
      time(h.created_at),
    ]),
  );
}

function attemptText(a: WebhookDelivery["attempts"][number]): string {
  return a.status_code === null ? (a.error ?? "failed") : String(a.status_code);
}

/** The table of `hangar webhooks deliveries`: one row per event, its attempts' outcomes in order. */
export function deliveriesTable(deliveries: readonly WebhookDelivery[]): string {
  return formatTable(
    ["EVENT", "TYPE", "STATUS", "ATTEMPTS", "LAST", "NEXT"],
    deliveries.map((d) => {
      const last = d.attempts[d.attempts.length - 1];
      return [
        d.event_id,
        d.event_type,
        d.status,
        d.attempts.map(attemptText).join(" ") || "-",
        last ? time(last.at) : "-",
        d.next_attempt_at ? time(d.next_attempt_at) : "-",
      ];
    }),
  );
}

/** What `hangar webhooks show` prints. */
export function webhookText(h: WebhookInfo): string {
  return [
    `Webhook ${h.id}`,
    `  URL:        ${h.url}`,
    `  Org:        ${h.org}`,
    `  App:        ${h.app ?? "every app of the org"}`,
    `  Events:     ${h.events.join(", ")}`,
    `  Created:    ${time(h.created_at)}`,
    `  Deliveries: ${h.pending} pending, ${h.delivered} delivered, ${h.given_up} given up`,
    "",
  ].join("\n");
}

const hookPath = (id: string, rest = "") => `/webhooks/${encodeURIComponent(id)}${rest}`;
const ORG_FLAGS = "-o, --org <slug>";
const ORG_HELP = "the org (default: the token's; `personal` for an operator token)";
const inOrg = (flags: { org?: string }) => (flags.org ? { query: { org: flags.org } } : {});

/**
 * `hangar webhooks create|list|show|deliveries|redeliver|delete` (docs/webhooks.md): signed POSTs of
 * the event feed's events to a URL, with retries and a delivery log.
 */
export function registerWebhooks(program: Command, ctx: Context): void {
  const webhooks = program
    .command("webhooks")
    .description("signed deliveries of the platform's events to a URL");

  webhooks
    .command("create")
    .description(
      "send the org's (or one app's) events of the given types to a URL; prints the signing secret once",
    )
    .requiredOption("--url <url>", "where to POST each event (http:// or https://)")
    .requiredOption(
      "--events <types>",
      "comma-separated event types, e.g. machine.started,release.created",
      eventTypes,
    )
    .option("-a, --app <name>", "only this app's events (default: every app of the org)")
    .option(ORG_FLAGS, ORG_HELP)
    .option("--json", "print the webhook (with its secret) as JSON")
    .action(async (flags: { url: string; events: string[]; app?: string; org?: string; json?: boolean }) => {
      const made = await (await ctx.api()).request<WebhookInfo & { secret: string }>("POST", "/webhooks", {
        body: { url: flags.url, events: flags.events, ...(flags.app ? { app: flags.app } : {}) },
        ...inOrg(flags),
      });
      if (flags.json) return printJson(ctx, made);
      ctx.out(webhookText(made));
      ctx.out(
        `\nSigning secret (shown this once; verify X-Hangar-Signature with it, docs/webhooks.md):\n  ${made.secret}\n`,
      );
    });

  webhooks
    .command("list")
    .description("list the org's webhooks")
    .option(ORG_FLAGS, ORG_HELP)
    .option("--json", "print the API's JSON")
    .action(async (flags: { org?: string; json?: boolean }) => {
      const { webhooks: hooks } = await (await ctx.api()).request<{ webhooks: WebhookInfo[] }>(
        "GET",
        "/webhooks",
        inOrg(flags),
      );
      if (flags.json) return printJson(ctx, hooks);
      if (hooks.length === 0)
        return ctx.out("No webhooks: make one with `hangar webhooks create --url <url> --events <types>`\n");
      ctx.out(webhooksTable(hooks));
    });

  webhooks
    .command("show")
    .argument("<id>", "the webhook")
    .description("show a webhook and its delivery counts")
    .option(ORG_FLAGS, ORG_HELP)
    .option("--json", "print the API's JSON")
    .action(async (id: string, flags: { org?: string; json?: boolean }) => {
      const hook = await (await ctx.api()).request<WebhookInfo>("GET", hookPath(id), inOrg(flags));
      if (flags.json) return printJson(ctx, hook);
      ctx.out(webhookText(hook));
    });

  webhooks
    .command("deliveries")
    .argument("<id>", "the webhook")
    .description("the webhook's delivery log, newest first: each event and its attempts")
    .option(ORG_FLAGS, ORG_HELP)
    .option("--json", "print the API's JSON (every attempt with its time, status or error and duration)")
    .action(async (id: string, flags: { org?: string; json?: boolean }) => {
      const { deliveries } = await (await ctx.api()).request<{ deliveries: WebhookDelivery[] }>(
        "GET",
        hookPath(id, "/deliveries"),
        inOrg(flags),
      );
      if (flags.json) return printJson(ctx, deliveries);
      if (deliveries.length === 0) return ctx.out(`No deliveries to ${id} yet\n`);
      ctx.out(deliveriesTable(deliveries));
    });

  webhooks
    .command("redeliver")
    .argument("<id>", "the webhook")
    .argument("<event-id>", "the event (its id in `hangar webhooks deliveries`)")
    .description("send a delivered or given-up event again, with a fresh round of retries")
    .option(ORG_FLAGS, ORG_HELP)
    .option("--json", "print the delivery as JSON")
    .action(async (id: string, eventId: string, flags: { org?: string; json?: boolean }) => {
      const d = await (await ctx.api()).request<WebhookDelivery>(
        "POST",
        hookPath(id, `/deliveries/${encodeURIComponent(eventId)}/redeliver`),
        inOrg(flags),
      );
      if (flags.json) return printJson(ctx, d);
      ctx.out(`Event ${d.event_id} will be sent to ${id} again\n`);
    });

  webhooks
    .command("delete")
    .argument("<id>", "the webhook")
    .description("delete a webhook: nothing more is sent to it")
    .option(ORG_FLAGS, ORG_HELP)
    .action(async (id: string, flags: { org?: string }) => {
      await (await ctx.api()).request("DELETE", hookPath(id), inOrg(flags));
      ctx.out(`Webhook ${id} deleted\n`);
    });
}
