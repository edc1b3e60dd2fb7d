import { describe, expect, it } from "vitest";
import { readiness } from "./readiness.js";

const up = { connected: true, downSince: undefined };
const down = { connected: false, downSince: Date.parse("2026-01-02T03:04:05Z") };

describe("readiness", () => {
  it("is not ready before the service has replayed and started", () => {
    expect(readiness(undefined, up)).toEqual({ ok: false, replayed: false, nats: "connected" });
  });

  it("is ready when the service says ok and NATS is connected", () => {
    expect(readiness({ ok: true, apps: 3 }, up)).toEqual({
      ok: true,
      apps: 3,
      replayed: true,
      nats: "connected",
    });
  });

  it("is not ready when the service says it is not ok", () => {
    expect(readiness({ ok: false, reason: "catching up" }, up).ok).toBe(false);
  });

  it("is not ready while NATS is disconnected, and says since when", () => {
    expect(readiness({ ok: true }, down)).toEqual({
      ok: false,
      replayed: true,
      nats: "disconnected",
      nats_down_since: "2026-01-02T03:04:05.000Z",
    });
  });
});
