import { DOMAIN_ERROR_CODES, type DomainErrorCode, isDomainErrorCode } from "@hangar/eventstore";
import { extractTraceContext, injectTraceContext, SpanKind, SpanStatusCode, tracer } from "@hangar/telemetry";
import {
  ClosedConnectionError,
  DrainingConnectionError,
  headers,
  type Msg,
  type NatsConnection,
  NoRespondersError,
  RequestError,
  type Subscription,
  TimeoutError,
} from "@nats-io/transport-node";
import { context, trace } from "@opentelemetry/api";

/**
 * A command refused or failed by the service that handles it, or by the bus on the way: `code` is
 * one of the platform's codes, and says whether asking again later may help (`retryable`).
 */
export class CommandError extends Error {
  override name = "CommandError";
  readonly retryable: boolean;
  constructor(
    message: string,
    readonly code: DomainErrorCode,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.retryable = DOMAIN_ERROR_CODES[code].retryable;
  }
}

type Reply<R> = { ok: R } | { error: { code: string; message: string } };

/**
 * What a failed NATS request means for a command, recognised by the client's error types: no
 * subscriber or no connection is `unavailable`, no answer in time is `timeout`; anything else (a
 * permissions violation, a bad subject) is returned as it is.
 */
function requestFailure(err: unknown, subject: string, timeoutMs: number): unknown {
  if (err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders()))
    return new CommandError(`no service answers ${subject}`, "unavailable", { cause: err });
  if (err instanceof TimeoutError)
    return new CommandError(`${subject} did not answer within ${timeoutMs} ms`, "timeout", { cause: err });
  if (err instanceof ClosedConnectionError || err instanceof DrainingConnectionError)
    return new CommandError(`no connection to NATS for ${subject}`, "unavailable", { cause: err });
  return err;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Sends a command as a NATS request and returns its result. Errors come back typed: a refusal as
 * CommandError with the handler's code, no handler as CommandError `unavailable`.
 */
export async function sendCommand<Q, R>(
  nc: NatsConnection,
  subject: string,
  payload: Q,
  timeoutMs = 5_000,
): Promise<R> {
  const span = tracer().startSpan(`${subject} request`, { kind: SpanKind.CLIENT });
  const h = headers();
  injectTraceContext(h, trace.setSpan(context.active(), span));
  try {
    const msg = await nc
      .request(subject, encoder.encode(JSON.stringify(payload)), { timeout: timeoutMs, headers: h })
      .catch((err: unknown) => {
        throw requestFailure(err, subject, timeoutMs);
      });
    const reply = JSON.parse(decoder.decode(msg.data)) as Reply<R>;
    if ("error" in reply) {
      // A handler of another version may answer a code this one does not know: it failed, unexpectedly.
      const code = isDomainErrorCode(reply.error.code) ? reply.error.code : "internal";
      throw new CommandError(reply.error.message, code);
    }
    return reply.ok;
  } catch (err) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
    throw err;
  } finally {
    span.end();
  }
}

/** What a command handler may throw to refuse with a platform code; anything else becomes `internal`. */
export type CodedError = Error & { code?: DomainErrorCode };

/**
 * The reply to a failed command: a platform code as it is; a failure that says it passes (an
 * EventStoreError with `retryable`: no acknowledgement, a lost connection, exhausted conflicts) as
 * `unavailable`, so the caller may ask again; anything else as `internal`.
 */
function replyError(e: unknown, subject: string): { code: DomainErrorCode; message: string } {
  const coded = e as CodedError & { retryable?: unknown };
  if (isDomainErrorCode(coded?.code)) return { code: coded.code, message: coded.message };
  if (coded?.retryable === true)
    return { code: "unavailable", message: `${subject} failed for now: ${String(e)}` };
  return { code: "internal", message: `${subject} failed: ${String(e)}` };
}

/**
 * Sends a command's answer. One larger than the connection's max_payload cannot be sent (the client
 * throws at once): the requester gets a refusal that says so instead, and the service goes on.
 */
function respondOk(msg: Msg, subject: string, ok: unknown): void {
  if (msg.reply && !isInbox(msg.reply)) return;
  const body = encoder.encode(JSON.stringify({ ok }));
  try {
    msg.respond(body);
  } catch {
    const message = `the answer to ${subject} (${body.length} bytes) is larger than the messaging allows; ask for less`;
    respond(msg, encoder.encode(JSON.stringify({ error: { code: "invalid_argument", message } })));
  }
}

/**
 * Whether a reply subject is a requester's inbox (nats.js's `_INBOX.`, or a platform user's
 * `_INBOX_<user>.`, inboxPrefixOf). A service's user may publish to the reply subject of any request
 * it receives (`allow_responses`), whatever subject the requester named, and the server checks no
 * deny list for it. A requester could then name a stream's subject (`ev.secret.org.<org>`), and the
 * answer would be stored there as an event of that stream, one its readers cannot decode. So a
 * service answers inboxes only.
 */
export function isInbox(reply: string): boolean {
  return reply.startsWith("_INBOX.") || reply.startsWith("_INBOX_");
}

/** Sends a reply; one that cannot go (the connection closed meanwhile) is dropped: the requester times out. */
function respond(msg: Msg, body: Uint8Array): void {
  if (msg.reply && !isInbox(msg.reply)) return;
  try {
    msg.respond(body);
  } catch {
    // Nothing to tell the requester with.
  }
}

/**
 * Serves commands on a subject in a queue group, so instances share the work. The handler's result
 * is the reply; a thrown error with a string `code` is sent back as that code.
 */
export function serveCommands<Q, R>(
  nc: NatsConnection,
  subject: string,
  queue: string,
  /** Called with the request and the subject it came on (a concrete one when `subject` has wildcards). */
  handle: (payload: Q, subject: string) => Promise<R>,
  onInternalError: (err: unknown) => void = () => undefined,
): Subscription {
  return nc.subscribe(subject, {
    queue,
    callback: (err, msg) => {
      if (err) return;
      // A request whose answer would go anywhere but an inbox is not carried out: see isInbox.
      if (msg.reply && !isInbox(msg.reply)) {
        // Left in the traces (as an error span), for an operator to see who tried.
        tracer()
          .startSpan(`${subject} refused`, {
            kind: SpanKind.SERVER,
            attributes: { "messaging.destination.name": msg.subject, "hangar.reply_subject": msg.reply },
          })
          .setStatus({ code: SpanStatusCode.ERROR, message: "the reply subject is not an inbox" })
          .end();
        return;
      }
      const parent = msg.headers ? extractTraceContext(msg.headers) : context.active();
      const span = tracer().startSpan(`${subject} handle`, { kind: SpanKind.SERVER }, parent);
      let payload: Q;
      try {
        payload = JSON.parse(decoder.decode(msg.data)) as Q;
      } catch {
        respond(
          msg,
          encoder.encode(
            JSON.stringify({ error: { code: "invalid_argument", message: "request is not JSON" } }),
          ),
        );
        span.end();
        return;
      }
      // Through a promise, so a handler that throws before its first await is answered as a
      // refusal too, instead of throwing out of the subscription's callback.
      // The handler runs in the span's context, so its own spans and appends are its children.
      const active = trace.setSpan(parent, span);
      Promise.resolve()
        .then(() => context.with(active, () => handle(payload, msg.subject)))
        .then(
          (ok) => {
            respondOk(msg, subject, ok);
            span.end();
          },
          (e: unknown) => {
            span.setStatus({ code: SpanStatusCode.ERROR, message: String(e) });
            const error = replyError(e, subject);
            if (error.code === "internal") onInternalError(e);
            respond(msg, encoder.encode(JSON.stringify({ error })));
            span.end();
          },
        );
    },
  });
}
