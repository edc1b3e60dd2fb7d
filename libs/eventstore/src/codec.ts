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
  /**
   * The wire type whose UTF-8 bytes are `bytes[start, end)`, as the same string every time, without
   * decoding them (undefined for a type this codec does not know): replays meet the same few types
   * millions of times.
   */
  wireTypeAt(bytes: Uint8Array, start: number, end: number): string | undefined;
  /** The short names this codec knows. */
  readonly types: readonly string[];
}

/** Builds a codec from a map of short event names to generated protobuf classes. */
// biome-ignore lint/suspicious/noExplicitAny: each class has its own message type; EventOf recovers every one.
export function eventCodec<M extends Record<string, MessageClass<any>>>(messages: M): EventCodec<EventOf<M>> {
  const toWire = new Map<string, { wire: string; cls: MessageClass<unknown> }>();
  const fromWire = new Map<string, { name: string; cls: MessageClass<unknown> }>();
  // By length, then compared from the last byte: the types of one stream share a long prefix.
  const byLength = new Map<number, { wire: string; bytes: Uint8Array }[]>();
  const utf8 = new TextEncoder();
  for (const [name, cls] of Object.entries(messages)) {
    const wire = cls.getTypeUrl("").replace(/^\//, "");
    toWire.set(name, { wire, cls });
    fromWire.set(wire, { name, cls });
    const bytes = utf8.encode(wire);
    byLength.set(bytes.length, [...(byLength.get(bytes.length) ?? []), { wire, bytes }]);
  }
  return {
    types: [...toWire.keys()],
    wireTypeAt(bytes, start, end) {
      const candidates = byLength.get(end - start);
      if (!candidates) return undefined;
      for (const c of candidates) if (sameBytes(c.bytes, bytes, start)) return c.wire;
      return undefined;
    },
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

/** Whether `a` equals the bytes of `b` from `start` on (as many as `a` has), compared from the end. */
function sameBytes(a: Uint8Array, b: Uint8Array, start: number): boolean {
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[start + i]) return false;
  return true;
}
