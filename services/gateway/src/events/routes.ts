import { AppNameSchema, validate } from "@hangar/config";
import {
  type EventFeed,
  type EventFilter,
  type FeedPosition,
  FilterError,
  parseEventId,
  parseTypesParam,
  type SseOptions,
  type SseResponse,
  sseStream,
  writeSse,
} from "@hangar/event-feed";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import { type Context, Hono } from "hono";
import { authorizeApp, authorizeOrg, principalOf } from "../http/authz.js";
import type { ApiEnv } from "../http/context.js";
import { ApiError } from "../http/errors.js";
import { appFor } from "../http/params.js";
import { flag, invalid, quoted } from "../http/query.js";
import { REQUEST_ID_HEADER } from "../http/request-id.js";

/** How the event stream routes are tuned (tests shorten the heartbeat). */
export interface EventRoutesOptions {
  /** A `: heartbeat` comment this often; default 15 s. */
  heartbeatMs?: number;
  /** Events queued for a slow client before its stream is ended (it resumes by id); default 10,000. */
  maxQueued?: number;
}

/** `Last-Event-ID` (header) or `last_event_id` (query, for EventSource clients that cannot set headers). */
function resumeFrom(c: Context): FeedPosition | undefined {
  const raw = c.req.header("last-event-id") ?? c.req.query("last_event_id");
  if (raw === undefined || raw === "") return undefined;
  const position = parseEventId(raw);
  if (!position)
    throw invalid("Last-Event-ID", `expected an event id such as 1042 or 1042.1, received ${quoted(raw)}`);
  return position;
}

/** The most EVENTS messages `?tail=` may start back from the end. */
const MAX_TAIL = 1_000;

/**
 * `?follow=false`: what had happened, then the end (`hangar events` without --follow); and
 * `?tail=<n>`: without a resume position, start the feed's last n messages back instead of now.
 */
function historyOptions(c: Context, feed: EventFeed): { follow: boolean; tail?: FeedPosition } {
  // Unset: follow (an SSE stream follows); otherwise the API's usual true/false query flag.
  const follow = c.req.query("follow") === undefined || flag(c, "follow");
  const raw = c.req.query("tail");
  if (raw === undefined) return { follow };
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > MAX_TAIL)
    throw invalid("tail", `expected a whole number from 1 to ${MAX_TAIL}, received ${quoted(raw)}`);
  return { follow, tail: { seq: Math.max(0, feed.lastSeq - n) } };
}

function typesFilter(c: Context): ReadonlySet<string> | undefined {
  const raw = c.req.query("types");
  if (raw === undefined) return undefined;
  try {
    return parseTypesParam(raw);
  } catch (err) {
    if (err instanceof FilterError) throw ApiError.of("invalid_argument", err.message);
    throw err;
  }
}

/**
 * The event feed as Server-Sent Events (docs/events.md): `GET /apps/{app}/events/stream` and the
 * org-wide `GET /events/stream`, each event `id: <id>` + `data: <hangar.event.v1 JSON>`. Authorized
 * like every read of the app or org: another org's app or org is 404, read-only tokens may read,
 * exec-only tokens may not; an app-scoped token sees only its apps.
 */
export function eventRoutes(feed: EventFeed, opts: EventRoutesOptions = {}): Hono<ApiEnv> {
  const stream = (c: Context<ApiEnv>, filter: EventFilter) => {
    const { follow, tail } = historyOptions(c, feed);
    const after = resumeFrom(c) ?? tail;
    const sse: SseOptions = {
      filter,
      follow,
      ...(after ? { after } : {}),
      ...(opts.heartbeatMs ? { heartbeatMs: opts.heartbeatMs } : {}),
      ...(opts.maxQueued ? { maxQueued: opts.maxQueued } : {}),
    };
    const headers = {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
      [REQUEST_ID_HEADER]: c.get("requestId"),
    };
    // On Node's HTTP server (startApiServer passes its response along), the frames go straight to the
    // socket: one write per client per event, no web stream per client. Elsewhere (app.request in
    // tests), a ReadableStream body.
    const outgoing = (c.env as { outgoing?: SseResponse } | undefined)?.outgoing;
    if (outgoing) {
      writeSse(feed, sse, outgoing, headers);
      return RESPONSE_ALREADY_SENT;
    }
    return c.body(sseStream(feed, sse), 200, headers);
  };
  return new Hono<ApiEnv>()
    .get("/apps/:app_name/events/stream", (c) => {
      const app = appFor(c, "read");
      const { org } = authorizeApp(c, app, "read");
      const filter: EventFilter = { app, org };
      const types = typesFilter(c);
      if (types) filter.types = types;
      return stream(c, filter);
    })
    .get("/events/stream", (c) => {
      const p = principalOf(c);
      const filter: EventFilter = {};
      const askedOrg = c.req.query("org") || undefined;
      const org = askedOrg ?? p.org;
      if (org !== undefined) {
        authorizeOrg(c, org, "read");
        filter.org = org;
      } else if (p.execOnly) {
        throw ApiError.of("permission_denied", "token is exec-only: it may only exec into machines");
      }
      const app = c.req.query("app") || undefined;
      if (app !== undefined) {
        const checked = validate(AppNameSchema, app);
        if (!checked.ok) throw invalid("app", checked.message);
        const { org: appOrg } = authorizeApp(c, checked.value, "read");
        if (org !== undefined && appOrg !== org)
          throw ApiError.of("not_found", `app ${app} not found in org ${org}`);
        filter.app = checked.value;
      }
      if (p.apps !== undefined) filter.apps = p.apps;
      const types = typesFilter(c);
      if (types) filter.types = types;
      return stream(c, filter);
    });
}
