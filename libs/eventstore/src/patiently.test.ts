import { JetStreamApiError } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { patiently } from "./patiently.js";

const timeout = () => Object.assign(new Error("timeout"), { name: "TimeoutError" });

describe("patiently", () => {
  it("tries a set-up call again while NATS does not answer, and returns what it finally gives", async () => {
    let calls = 0;
    const seen: unknown[] = [];
    const result = await patiently(
      async () => {
        calls++;
        if (calls < 3) throw timeout();
        return "stream";
      },
      { retryMs: 1, onError: (err) => seen.push(err) },
    );
    expect(result).toBe("stream");
    expect(calls).toBe(3);
    expect(seen).toHaveLength(2);
  });

  it("throws a JetStream API error at once, and the last failure once the attempts are spent", async () => {
    let calls = 0;
    const refused = new JetStreamApiError({
      code: 400,
      err_code: 10058,
      description: "stream name already in use",
    });
    await expect(
      patiently(
        async () => {
          calls++;
          throw refused;
        },
        { retryMs: 1 },
      ),
    ).rejects.toBe(refused);
    expect(calls).toBe(1);
    calls = 0;
    await expect(
      patiently(
        async () => {
          calls++;
          throw timeout();
        },
        { retryMs: 1, attempts: 4 },
      ),
    ).rejects.toThrow("timeout");
    expect(calls).toBe(4);
  });
});
