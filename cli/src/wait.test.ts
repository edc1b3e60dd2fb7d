import { describe, expect, it } from "vitest";
import type { MachineEvent } from "./types.js";
import { restartOutcome } from "./wait.js";

const event = (
  id: string,
  type: string,
  status: string,
  timestamp: number,
  request?: unknown,
): MachineEvent => ({
  id,
  type,
  status,
  timestamp,
  ...(request ? { request } : {}),
});

describe("restartOutcome", () => {
  const request = event("e3", "restart", "stopping", 300);

  it("is started once a start follows the restart's request, and not for a start before it", () => {
    const before = [event("e1", "launch", "created", 100), event("e2", "start", "started", 200), request];
    expect(restartOutcome(before, request)).toBeUndefined();
    const after = [...before, event("e4", "exit", "stopped", 400), event("e5", "start", "started", 500)];
    expect(restartOutcome(after, request)).toBe("started");
  });

  it("is why it failed when it did not start again", () => {
    const events = [request, event("e4", "launch", "failed", 400, { error: "image gone" })];
    expect(restartOutcome(events, request)).toBe("image gone");
  });
});
