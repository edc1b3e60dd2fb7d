import { extractTraceContext, injectTraceContext, SpanKind, SpanStatusCode, tracer } from "@hangar/telemetry";
import { headers, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { context, trace } from "@opentelemetry/api";

/** A command refused or failed by the service that handles it; `code` is machine-readable. */
export class CommandError extends Error {
  override name = "CommandError";
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

type Reply<R> = { ok: R } | { error: { code: string; message: string } };

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
        const text = String(err);
        if (/no responders|503/i.test(text))
          throw new CommandError(`no service answers ${subject}`, "unavailable");
        if (/timeout/i.test(text))
          throw new CommandError(`${subject} did not answer within ${timeoutMs} ms`, "timeout");
        throw err;
      });
    const reply = JSON.parse(decoder.decode(msg.data)) as Reply<R>;
    if ("error" in reply) throw new CommandError(reply.error.message, reply.error.code);
    return reply.ok;
  } catch (err) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
    throw err;
  } finally {
    span.end();
  }
}

/** What a command handler may throw to refuse with a code; anything else becomes `internal`. */
export type CodedError = Error & { code?: string };

/**
 * Serves commands on a subject in a queue group, so instances share the work. The handler's result
 * is the reply; a thrown error with a string `code` is sent back as that code.
 */
export function serveCommands<Q, R>(
  nc: NatsConnection,
  subject: string,
  queue: string,
  handle: (payload: Q) => Promise<R>,
  onInternalError: (err: unknown) => void = () => undefined,
): Subscription {
  return nc.subscribe(subject, {
    queue,
    callback: (err, msg) => {
      if (err) return;
      const parent = msg.headers ? extractTraceContext(msg.headers) : context.active();
      const span = tracer().startSpan(`${subject} handle`, { kind: SpanKind.SERVER }, parent);
      let payload: Q;
      try {
        payload = JSON.parse(decoder.decode(msg.data)) as Q;
      } catch {
        msg.respond(
          encoder.encode(
            JSON.stringify({ error: { code: "invalid_argument", message: "request is not JSON" } }),
          ),
        );
        span.end();
        return;
      }
      handle(payload).then(
        (ok) => {
          msg.respond(encoder.encode(JSON.stringify({ ok })));
          span.end();
        },
        (e: unknown) => {
          const coded = e as CodedError;
          const known = typeof coded?.code === "string" && coded.code !== "";
          if (!known) onInternalError(e);
          span.setStatus({ code: SpanStatusCode.ERROR, message: String(e) });
          const error = known
            ? { code: coded.code as string, message: coded.message }
            : { code: "internal", message: `${subject} failed: ${String(e)}` };
          msg.respond(encoder.encode(JSON.stringify({ error })));
          span.end();
        },
      );
    },
  });
}
