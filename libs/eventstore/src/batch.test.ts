import { hangar } from "@hangar/proto";
import { describe, expect, it } from "vitest";
import { counterStream } from "../test/counter.js";
import { decodeBatch, encodeBatch } from "./batch.js";
import { DecodeError } from "./errors.js";

const meta = { commandId: "cmd-1", correlationId: "flow-1" };

describe("decodeBatch", () => {
  it("gives back every event of a batch in order, with its envelope", () => {
    const data = encodeBatch(
      counterStream,
      "c1",
      [
        { type: "Incremented", data: { by: 2, totalAfter: 2 } },
        { type: "Reset", data: {} },
        { type: "Incremented", data: { by: 5, totalAfter: 5 } },
      ],
      meta,
      1_700_000_000_000,
    );
    const events = decodeBatch(counterStream, data, 42);
    expect(events.map((e) => [e.event.type, e.seq, e.index])).toEqual([
      ["Incremented", 42, 0],
      ["Reset", 42, 1],
      ["Incremented", 42, 2],
    ]);
    expect(events[2]?.event.data).toEqual({ by: 5, totalAfter: 5 });
    expect(events[1]).toMatchObject({
      aggregateId: "c1",
      causationId: "cmd-1",
      correlationId: "flow-1",
      timeUnixMs: 1_700_000_000_000,
    });
  });

  it("refuses a type the stream does not know, naming it", () => {
    const data = hangar.v1.EventBatch.encode({
      events: [{ eventId: "e", type: "test.Unknown", aggregateId: "c1", payload: new Uint8Array(0) }],
    }).finish();
    expect(() => decodeBatch(counterStream, data, 1)).toThrow(DecodeError);
    expect(() => decodeBatch(counterStream, data, 1)).toThrow(/test\.Unknown/);
  });

  it("refuses a truncated message, and decodes the next one whole", () => {
    const whole = encodeBatch(
      counterStream,
      "c1",
      [{ type: "Incremented", data: { by: 1, totalAfter: 1 } }],
      meta,
    );
    expect(() => decodeBatch(counterStream, whole.subarray(0, whole.length - 3), 1)).toThrow(RangeError);
    expect(decodeBatch(counterStream, whole, 2).map((e) => e.event)).toEqual([
      { type: "Incremented", data: { by: 1, totalAfter: 1 } },
    ]);
  });
});
