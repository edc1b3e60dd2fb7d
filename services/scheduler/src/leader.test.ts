import { describe, expect, it } from "vitest";
import { leaderHealth } from "./leader.js";

const since = Date.UTC(2026, 0, 1);
/** A started scheduler whose own health is `ok` (false once it is stopping). */
const scheduler = (ok: boolean) => ({ health: () => ({ ok, apps: 1 }) });

describe("leaderHealth", () => {
  it("is active with the scheduler's own health only while the lease is held and the scheduler started", () => {
    expect(leaderHealth({ held: true, scheduler: scheduler(true), stopped: false, since })).toEqual({
      ok: true,
      apps: 1,
      role: "active",
      since: "2026-01-01T00:00:00.000Z",
    });
  });

  it("says starting, healthy, while the holder replays the log", () => {
    expect(leaderHealth({ held: true, scheduler: undefined, stopped: false, since })).toMatchObject({
      ok: true,
      role: "starting",
    });
  });

  it("is a healthy standby during a hand-over: lease lost, its scheduler still being stopped", () => {
    const h = leaderHealth({ held: false, scheduler: scheduler(false), stopped: false, since });
    expect(h).toEqual({ ok: true, role: "standby", since: "2026-01-01T00:00:00.000Z" });
  });

  it("is not ok once the process stops", () => {
    expect(leaderHealth({ held: false, scheduler: undefined, stopped: true, since })).toMatchObject({
      ok: false,
      role: "standby",
    });
  });
});
