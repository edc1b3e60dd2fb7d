import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_RETRIES, restartDecision } from "./restart.js";

const ok = { exitCode: 0 };
const failed = { exitCode: 3 };
const killed = { exitCode: 143, signal: "SIGTERM" };
const unknown = { exitCode: null };

describe("restartDecision", () => {
  it("never restarts a requested stop, whatever the policy", () => {
    for (const policy of ["no", "always", "on-failure"] as const) {
      expect(restartDecision({ policy }, failed, 0, true)).toBe(false);
      expect(restartDecision({ policy }, ok, 0, true)).toBe(false);
    }
  });

  it("no: never restarts", () => {
    expect(restartDecision({ policy: "no" }, failed, 0, false)).toBe(false);
    expect(restartDecision({ policy: "no" }, killed, 0, false)).toBe(false);
  });

  it("always: restarts any unrequested exit, clean ones too, without a limit", () => {
    expect(restartDecision({ policy: "always" }, ok, 0, false)).toBe(true);
    expect(restartDecision({ policy: "always" }, failed, 1_000, false)).toBe(true);
    expect(restartDecision({ policy: "always", max_retries: 1 }, failed, 5, false)).toBe(true);
  });

  it("on-failure: restarts non-zero, signal and unknown exits, not clean ones", () => {
    expect(restartDecision({ policy: "on-failure" }, failed, 0, false)).toBe(true);
    expect(restartDecision({ policy: "on-failure" }, killed, 0, false)).toBe(true);
    expect(restartDecision({ policy: "on-failure" }, unknown, 0, false)).toBe(true);
    expect(restartDecision({ policy: "on-failure" }, ok, 0, false)).toBe(false);
  });

  it("on-failure: stops restarting after max_retries", () => {
    const policy = { policy: "on-failure", max_retries: 2 } as const;
    expect(restartDecision(policy, failed, 0, false)).toBe(true);
    expect(restartDecision(policy, failed, 1, false)).toBe(true);
    expect(restartDecision(policy, failed, 2, false)).toBe(false);
    expect(restartDecision({ policy: "on-failure", max_retries: 0 }, failed, 0, false)).toBe(false);
  });

  it("on-failure without max_retries allows the default number of restarts", () => {
    expect(DEFAULT_MAX_RETRIES).toBe(10);
    expect(restartDecision({ policy: "on-failure" }, failed, 9, false)).toBe(true);
    expect(restartDecision({ policy: "on-failure" }, failed, 10, false)).toBe(false);
  });

  it("treats a missing policy as on-failure, Fly's default", () => {
    expect(restartDecision(undefined, failed, 0, false)).toBe(true);
    expect(restartDecision({}, ok, 0, false)).toBe(false);
    expect(restartDecision({ max_retries: 1 }, failed, 1, false)).toBe(false);
  });
});
