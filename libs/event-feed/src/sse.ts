import type { EventFeed, FeedEndReason, FeedSubscribeOptions } from "./feed.js";
import type { EventFilter } from "./filter.js";
import type { FeedPosition } from "./public-event.js";

const encoder = new TextEncoder();
const HEARTBEAT = encoder.encode(": heartbeat\n\n");
const OPENING = encoder.encode(": hangar events\n\n");

export interface SseOptions {
  filter: EventFilter;
  after?: FeedPosition;
  /** A comment line this often keeps proxies from closing an idle stream; default 15 s. */
  heartbeatMs?: number;
  /**
   * Frames queued for a client that reads slower than events come; past this, its stream ends (after
   * what is queued) and it resumes from its last id. Default 10,000.
   */
  maxQueued?: number;
  /** Told why a stream ended early (`behind`, `failed`, `stopped`). */
  onEnd?(reason: FeedEndReason, err?: unknown): void;
  /**
   * False: end the stream once what had happened when it began is sent (`hangar events` without
   * --follow); default true, streaming live events after it.
   */
  follow?: boolean;
}

/** Where an SSE stream's bytes go: a web stream's controller, or a Node response. */
interface SseSink {
  write(chunk: Uint8Array): void;
  close(): void;
  /** How much waits to be sent, in the unit of `limit`. */
  backlog(): number;
}

/** Follows the feed into `sink`; returns what stops it (the client went away). */
function pipeFeed(feed: EventFeed, opts: SseOptions, sink: SseSink, limit: number): () => void {
  let subscription: { close(): void } | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let ended = false;
  const finish = () => {
    ended = true;
    clearInterval(heartbeat);
    subscription?.close();
  };
  const end = (reason?: FeedEndReason, err?: unknown) => {
    if (ended) return;
    finish();
    if (reason !== undefined) opts.onEnd?.(reason, err);
    sink.close();
  };
  // A first comment makes the response's headers go out at once, before any event.
  sink.write(OPENING);
  const sub: FeedSubscribeOptions = {
    filter: opts.filter,
    onEvent(e) {
      if (ended) return;
      sink.write(e.frameBytes);
      if (sink.backlog() > limit) end("behind");
    },
    onEnd: end,
    maxPending: opts.maxQueued ?? 10_000,
  };
  // follow=false: the end once what had happened is sent.
  if (opts.follow === false) sub.onCaughtUp = () => end();
  if (opts.after !== undefined) sub.after = opts.after;
  subscription = feed.subscribe(sub);
  // A resume served from the ring arrives inside subscribe(), and may already have ended the client.
  if (ended) {
    subscription.close();
    return finish;
  }
  heartbeat = setInterval(() => {
    if (!ended) sink.write(HEARTBEAT);
  }, opts.heartbeatMs ?? 15_000);
  heartbeat.unref();
  return finish;
}

/**
 * A subscription as a Server-Sent Events body. Frames are enqueued without waiting for the reader, so
 * one slow client never holds up the feed or the others; its queue is bounded (`maxQueued`) and a
 * client past it is ended and resumes by id.
 */
export function sseStream(feed: EventFeed, opts: SseOptions): ReadableStream<Uint8Array> {
  let finish: (() => void) | undefined;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        finish = pipeFeed(
          feed,
          opts,
          {
            write: (chunk) => controller.enqueue(chunk),
            close: () => controller.close(),
            backlog: () => -(controller.desiredSize ?? 0),
          },
          opts.maxQueued ?? 10_000,
        );
      },
      cancel() {
        finish?.();
      },
    },
    { highWaterMark: 1 },
  );
}

/** The part of Node's `http.ServerResponse` that `writeSse` uses. */
export interface SseResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  write(chunk: Uint8Array): boolean;
  end(): unknown;
  readonly writableLength: number;
  once(event: "close", listener: () => void): unknown;
}

/**
 * The same stream written straight to a Node response: each event's frame (built once) goes to each
 * client's socket with one `write`, without a web stream per client, which is what 1,000 clients cost
 * most. Bounded by the bytes the response holds unsent (`maxQueued` × 1 KiB); past that, the client is
 * ended and resumes by id.
 */
export function writeSse(
  feed: EventFeed,
  opts: SseOptions,
  res: SseResponse,
  headers: Record<string, string>,
): void {
  res.writeHead(200, headers);
  const finish = pipeFeed(
    feed,
    opts,
    { write: (chunk) => res.write(chunk), close: () => res.end(), backlog: () => res.writableLength },
    (opts.maxQueued ?? 10_000) * 1024,
  );
  res.once("close", finish);
}
