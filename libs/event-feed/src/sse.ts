import type { EventFeed, FeedEndReason, FeedSubscribeOptions } from "./feed.js";
import type { EventFilter } from "./filter.js";
import type { FeedPosition } from "./public-event.js";

const encoder = new TextEncoder();
const HEARTBEAT = encoder.encode(": heartbeat\n\n");

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

/**
 * A subscription as a Server-Sent Events body. Frames are enqueued without waiting for the reader, so
 * one slow client never holds up the feed or the others; its queue is bounded (`maxQueued`) and a
 * client past it is ended and resumes by id.
 */
export function sseStream(feed: EventFeed, opts: SseOptions): ReadableStream<Uint8Array> {
  const maxQueued = opts.maxQueued ?? 10_000;
  let subscription: { close(): void } | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let ended = false;
  const finish = () => {
    ended = true;
    clearInterval(heartbeat);
    subscription?.close();
  };
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        // A first comment makes the response's headers go out at once, before any event.
        controller.enqueue(encoder.encode(": hangar events\n\n"));
        const end = (reason: FeedEndReason, err?: unknown) => {
          if (ended) return;
          finish();
          opts.onEnd?.(reason, err);
          controller.close();
        };
        const sub: FeedSubscribeOptions = {
          filter: opts.filter,
          onEvent(e) {
            if (ended) return;
            controller.enqueue(e.frameBytes);
            if ((controller.desiredSize ?? 0) < -maxQueued) end("behind");
          },
          onEnd: end,
          maxPending: maxQueued,
        };
        if (opts.follow === false) {
          sub.onCaughtUp = () => {
            if (ended) return;
            finish();
            controller.close();
          };
        }
        if (opts.after !== undefined) sub.after = opts.after;
        subscription = feed.subscribe(sub);
        heartbeat = setInterval(() => {
          if (!ended) controller.enqueue(HEARTBEAT);
        }, opts.heartbeatMs ?? 15_000);
        heartbeat.unref();
      },
      cancel() {
        finish();
      },
    },
    { highWaterMark: 1 },
  );
}
