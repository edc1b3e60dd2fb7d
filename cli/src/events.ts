import { setTimeout as sleep } from "node:timers/promises";
import { EventSourceParserStream } from "eventsource-parser/stream";
import { type ApiClient, ApiError, ConnectionError } from "./api.js";
import { CliError } from "./cli-error.js";

/** One event of the feed as the gateway's SSE routes send it: schema `hangar.event.v1` (docs/events.md). */
export interface PublicEvent {
  /** Its position in the feed: what `--since` and a resume (`Last-Event-ID`) take back. */
  id: string;
  schema: string;
  /** `<aggregate>.<event>`, e.g. `machine.started`. */
  type: string;
  app: string | null;
  org: string | null;
  /** ISO 8601. */
  time: string;
  /** The aggregate's id, e.g. `<app>.<machine id>`. */
  subject: string;
  data: Record<string, unknown>;
}

/** What `hangar events` asks the feed for. */
export interface EventsQuery {
  /** One app's feed (`/v1/apps/{app}/events/stream`); without it, the org's (`/v1/events/stream`). */
  app?: string;
  /** The org of the org-wide feed, when the token covers several. */
  org?: string;
  types?: readonly string[];
  /** Start after this event id; without it, the feed's last `tail` messages. */
  since?: string;
  /** Keep streaming (and resume after a dropped connection); otherwise end once caught up. */
  follow: boolean;
}

/** How many of the feed's latest messages `hangar events` starts with when no `--since` is given. */
export const RECENT_EVENTS = 100;

const TYPE = /^[a-z_]+\.([a-z_]+|\*)$/;
const EVENT_ID = /^\d+(\.\d+)?$/;

/** `--types a,b`: event types such as `machine.started`, or `machine.*` for every machine event. */
export function parseTypes(csv: string): string[] {
  const types = csv
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
  const bad = types.filter((t) => !TYPE.test(t));
  if (types.length === 0 || bad.length > 0) {
    throw new CliError(
      `--types takes event types separated by commas; ${bad.length > 0 ? `not a type: ${bad.join(", ")}` : "none given"}`,
      "e.g. --types machine.started,release.created or --types machine.* (docs/events.md lists them)",
    );
  }
  return types;
}

/** `--since <id>`: an event id as the feed prints it (`<seq>` or `<seq>.<index>`). */
export function parseSince(id: string): string {
  if (!EVENT_ID.test(id)) {
    throw new CliError(
      `--since takes an event id such as 1234 or 1234.1, not ${JSON.stringify(id)}`,
      "copy the id of the last event you saw from `hangar events --json`",
    );
  }
  return id;
}

/** The data fields a one-line summary shows first, when the event has them. */
const SUMMARY_FIELDS = ["state", "status", "reason", "region", "version", "exit_code", "error", "message"];
const SUMMARY_MAX = 100;

/** A short `key=value` summary of an event's data: its telling fields first, scalars only. */
export function summarizeEvent(event: PublicEvent): string {
  const scalar = (v: unknown) => ["string", "number", "boolean"].includes(typeof v) && v !== "";
  const keys = Object.keys(event.data).filter((k) => scalar(event.data[k]));
  const ordered = [
    ...SUMMARY_FIELDS.filter((k) => keys.includes(k)),
    ...keys.filter((k) => !SUMMARY_FIELDS.includes(k)),
  ];
  const text = ordered
    .map((k) => {
      const v = event.data[k];
      return `${k}=${typeof v === "string" && /\s/.test(v) ? JSON.stringify(v) : String(v)}`;
    })
    .join(" ");
  return text.length > SUMMARY_MAX ? `${text.slice(0, SUMMARY_MAX - 1)}…` : text;
}

/** How `hangar events` prints an event: `<time> <app> <type> <subject> <summary>`. */
export function formatEvent(event: PublicEvent): string {
  return [event.time, event.app ?? "-", event.type, event.subject, summarizeEvent(event)].join(" ").trimEnd();
}

export interface FollowOptions {
  signal?: AbortSignal;
  /** Told when a dropped stream is resumed (after `lastId`). */
  onResume?(lastId: string | undefined, reason: string): void;
  /** The first wait before resuming; it doubles up to 30 s while the gateway stays out of reach. */
  resumeDelayMs?: number;
}

const MAX_RESUME_DELAY_MS = 30_000;

/**
 * The feed's events for `query`, read from the gateway's SSE stream. Without `follow` it ends once
 * the gateway has sent what had happened; with it, it streams until aborted and, when the stream
 * drops, resumes after the last event it yielded (`Last-Event-ID`): nothing lost, nothing doubled.
 * An HTTP error (bad filter, unknown app, a token that may not read) ends it with the API's message.
 */
export async function* readEvents(
  api: ApiClient,
  query: EventsQuery,
  options: FollowOptions = {},
): AsyncGenerator<PublicEvent> {
  let lastId = query.since;
  let delay = options.resumeDelayMs ?? 1_000;
  for (;;) {
    let reason: string;
    try {
      const res = await api.send(
        "GET",
        query.app ? `/apps/${encodeURIComponent(query.app)}/events/stream` : "/events/stream",
        {
          query: {
            org: query.org,
            types: query.types?.join(","),
            follow: query.follow ? undefined : false,
            tail: lastId === undefined ? RECENT_EVENTS : undefined,
          },
          headers: {
            accept: "text/event-stream",
            ...(lastId === undefined ? {} : { "last-event-id": lastId }),
          },
          ...(options.signal ? { signal: options.signal } : {}),
        },
      );
      if (!res.body) throw new ConnectionError("the event stream", "the gateway answered without a body");
      const frames = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
      for await (const frame of frames) {
        const event = JSON.parse(frame.data) as PublicEvent;
        yield event;
        lastId = frame.id ?? event.id;
        delay = options.resumeDelayMs ?? 1_000;
      }
      if (!query.follow) return;
      reason = "the gateway ended the stream";
    } catch (err) {
      // A refusal or a bad request stays one; a gateway restarting (5xx) or out of reach is waited out.
      const refused = err instanceof ApiError && err.httpStatus < 500;
      if (options.signal?.aborted || refused || !query.follow) throw err;
      reason = err instanceof Error ? err.message : String(err);
    }
    options.onResume?.(lastId, reason);
    await sleep(delay, undefined, options.signal ? { signal: options.signal } : {});
    delay = Math.min(delay * 2, MAX_RESUME_DELAY_MS);
  }
}
