// A test aggregate whose lost updates are visible: every increment records the total after it,
// so applying the commands one by one must give totals 1, 2, 3, ... with no gap and no repeat.
import protobuf from "protobufjs";
import {
  type Decider,
  DomainError,
  defineStream,
  eventCodec,
  type MessageClass,
  prefixedStream,
} from "../src/mod.js";

const root = protobuf.Root.fromJSON({
  nested: {
    test: {
      nested: {
        Incremented: { fields: { by: { type: "int32", id: 1 }, totalAfter: { type: "int32", id: 2 } } },
        Reset: { fields: {} },
      },
    },
  },
});

function messageClass<T>(name: string): MessageClass<T> {
  const type = root.lookupType(name);
  return {
    encode: (m) => type.encode(type.create(m as Record<string, unknown>)),
    decode: (b) => type.toObject(type.decode(b), { defaults: true }) as T,
    getTypeUrl: () => `/${name}`,
  };
}

const messages = {
  Incremented: messageClass<{ by: number; totalAfter: number }>("test.Incremented"),
  Reset: messageClass<Record<string, never>>("test.Reset"),
};

export const counterStream = defineStream({
  name: "COUNTERS",
  subjectPrefix: "ev.counter",
  codec: eventCodec(messages),
});

/** The counter stream under a prefix of its own, so test files do not share streams. */
export function counterStreamFor(prefix: string, duplicateWindowMs?: number) {
  const s = prefixedStream(counterStream, prefix);
  return duplicateWindowMs === undefined ? s : { ...s, duplicateWindowMs };
}

export type CounterEvent =
  | { type: "Incremented"; data: { by: number; totalAfter: number } }
  | { type: "Reset"; data: Record<string, never> };
export type CounterCommand = { type: "Increment"; by: number } | { type: "Reset" };
export interface CounterState {
  total: number;
  increments: number;
}

export const counterDecider: Decider<CounterState, CounterCommand, CounterEvent> = {
  initialState: () => ({ total: 0, increments: 0 }),
  decide(command, state) {
    if (command.type === "Reset") return state.total === 0 ? [] : [{ type: "Reset", data: {} }];
    if (command.by <= 0) throw new DomainError("increment by a positive number", "invalid_argument");
    return [{ type: "Incremented", data: { by: command.by, totalAfter: state.total + command.by } }];
  },
  evolve(state, event) {
    if (event.type === "Reset") return { total: 0, increments: state.increments };
    return { total: event.data.totalAfter, increments: state.increments + 1 };
  },
};

let unique = 0;
/** A prefix unique to this process and call, usable as a stream name part and subject token. */
export function uniquePrefix(name: string): string {
  unique++;
  return `t${process.pid}${name}${unique}${Date.now().toString(36)}`;
}
