import { describe, expect, it } from "vitest";
import { KeyedSerial } from "./keyed-serial.js";

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("KeyedSerial", () => {
  it("runs work on one key one at a time, in order, past a failure", async () => {
    const serial = new KeyedSerial();
    const order: string[] = [];
    const first = deferred();
    const a = serial.run("k", async () => {
      order.push("a start");
      await first.promise;
      order.push("a end");
      throw new Error("a failed");
    });
    const b = serial.run("k", async () => {
      order.push("b");
      return 2;
    });
    await Promise.resolve();
    expect(order).toEqual(["a start"]);
    expect(serial.busy("k")).toBe(true);
    first.resolve();
    await expect(a).rejects.toThrow("a failed");
    await expect(b).resolves.toBe(2);
    expect(order).toEqual(["a start", "a end", "b"]);
  });

  it("runs work on other keys alongside, and forgets a key once its work settled", async () => {
    const serial = new KeyedSerial();
    const held = deferred();
    const a = serial.run("a", () => held.promise);
    await expect(serial.run("b", async () => "b")).resolves.toBe("b");
    expect(serial.busy("a")).toBe(true);
    held.resolve();
    await a;
    await new Promise((r) => setTimeout(r, 0));
    expect(serial.busy("a")).toBe(false);
    expect(serial.busy("b")).toBe(false);
  });
});
