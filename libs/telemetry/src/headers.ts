import {
  type Context,
  context,
  propagation,
  type TextMapGetter,
  type TextMapSetter,
} from "@opentelemetry/api";

/** Structural type of NATS message headers (@nats-io MsgHdrs satisfies it), so this lib needs no NATS dependency. */
export interface HeaderCarrier {
  get(k: string): string;
  set(k: string, v: string): void;
}

const setter: TextMapSetter<HeaderCarrier> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

const getter: TextMapGetter<HeaderCarrier> = {
  // The carrier cannot enumerate its keys; the W3C trace-context propagator only looks up known names.
  keys: () => [],
  // MsgHdrs.get answers "" for a missing key, which the propagator would otherwise try to parse.
  get: (carrier, key) => carrier.get(key) || undefined,
};

/** Writes the W3C traceparent/tracestate of `ctx` (default: the active context) into `headers`. */
export function injectTraceContext(headers: HeaderCarrier, ctx: Context = context.active()): void {
  propagation.inject(ctx, headers, setter);
}

/** Returns `ctx` (default: the active context) extended with the remote span context found in `headers`, if any. */
export function extractTraceContext(
  headers: HeaderCarrier | undefined,
  ctx: Context = context.active(),
): Context {
  return headers ? propagation.extract(ctx, headers, getter) : ctx;
}
