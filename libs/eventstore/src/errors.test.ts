import { describe, expect, it } from "vitest";
import {
  ConcurrencyError,
  DecodeError,
  DOMAIN_ERROR_CODES,
  DomainError,
  type DomainErrorCode,
  isDomainErrorCode,
  isRetryable,
  RetriesExhaustedError,
} from "./errors.js";
import { PublishRejectedError, PublishTimeoutError } from "./publisher.js";

// isRetryable is what a consumer asks before it naks (retryable) or terminates (not) a message.
describe("retryable or terminal", () => {
  it("takes a decider's refusal as terminal, whatever its code says of the bus", () => {
    for (const code of ["invalid_argument", "not_found", "failed_precondition", "lease_held"] as const)
      expect(isRetryable(new DomainError("refused", code)), code).toBe(false);
  });

  it("gives each platform code one retry policy: only a service away or late is worth asking again", () => {
    const retryable = (Object.keys(DOMAIN_ERROR_CODES) as DomainErrorCode[]).filter(
      (code) => DOMAIN_ERROR_CODES[code].retryable,
    );
    expect(retryable).toEqual(["unavailable", "timeout"]);
    // An error from another service carries only its code.
    expect(isRetryable(Object.assign(new Error("no answer"), { code: "timeout" }))).toBe(true);
    expect(isRetryable(Object.assign(new Error("leased"), { code: "lease_held" }))).toBe(false);
  });

  it("retries what the event store says passes: conflicts, lost acknowledgements, exhausted retries", () => {
    expect(isRetryable(new ConcurrencyError("ev.x.a", 3, 4))).toBe(true);
    expect(isRetryable(new PublishTimeoutError("ev.x.a", 5000))).toBe(true);
    expect(isRetryable(new RetriesExhaustedError("a", 20))).toBe(true);
    expect(isRetryable(new PublishRejectedError("wrong last sequence", 10071))).toBe(false);
  });

  it("terminates a message that does not decode", () => {
    expect(isRetryable(new DecodeError("unknown event type x"))).toBe(false);
  });

  it("retries anything it cannot classify (a lost database connection), so no message is dropped by mistake", () => {
    expect(isRetryable(new Error("connection reset"))).toBe(true);
    expect(isRetryable("a string")).toBe(true);
    expect(isRetryable(Object.assign(new Error("x"), { code: "ECONNRESET" }))).toBe(true);
    expect(isRetryable(Object.assign(new Error("bad row"), { retryable: false }))).toBe(false);
  });

  it("knows its own codes only", () => {
    expect(isDomainErrorCode("failed_precondition")).toBe(true);
    expect(isDomainErrorCode("CONCURRENCY_CONFLICT")).toBe(false);
    expect(isDomainErrorCode("toString")).toBe(false);
  });
});
