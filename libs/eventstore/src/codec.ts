import { DecodeError } from "./errors.js";

/** A protobufjs static message class: what `pbjs -t static-module` generates for each message. */
export interface MessageClass<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): T;
  getTypeUrl(prefix?: string): string;
}

/** An event as the domain sees it: its short type name and its protobuf message. */
export type EventOf<M> = {
  [K in keyof M & string]: M[K] extends MessageClass<infer T> ? { type: K; data: T } : never;
}[keyof M & string];

/** Encodes and decodes one aggregate's events; the wire type is the protobuf full name. */
export interface EventCodec<E extends { type: string }> {
  encode(event: E): { type: string; payload: Uint8Array };
  decode(type: string, payload: Uint8Array): E;
  /** The short names this codec knows. */
  readonly types: readonly string[];
}

/** Builds a codec from a map of short event names to generated protobuf classes. */
// biome-ignore lint/suspicious/noExplicitAny: each class has its own message type; EventOf recovers every one.
export function eventCodec<M extends Record<string, MessageClass<any>>>(messages: M): EventCodec<EventOf<M>> {
  const toWire = new Map<string, { wire: string; cls: MessageClass<unknown> }>();
  const fromWire = new Map<string, { name: string; cls: MessageClass<unknown> }>();
  for (const [name, cls] of Object.entries(messages)) {
    const wire = cls.getTypeUrl("").replace(/^\//, "");
    toWire.set(name, { wire, cls });
    fromWire.set(wire, { name, cls });
  }
  return {
    types: [...toWire.keys()],
    encode(event) {
      const entry = toWire.get(event.type);
      if (!entry) throw new DecodeError(`unknown event type ${event.type}`);
      return { type: entry.wire, payload: entry.cls.encode(event.data).finish() };
    },
    decode(type, payload) {
      const entry = fromWire.get(type);
      if (!entry)
        throw new DecodeError(`unknown event type ${type} (known: ${[...fromWire.keys()].join(", ")})`);
      try {
        return { type: entry.name, data: entry.cls.decode(payload) } as EventOf<M>;
      } catch (err) {
        throw new DecodeError(`payload of ${type} does not decode`, { cause: err });
      }
    },
  };
}
