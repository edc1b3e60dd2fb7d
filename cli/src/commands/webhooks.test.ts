import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import { deliveriesTable, eventTypes, webhooksTable } from "./webhooks.js";

describe("webhooks command", () => {
  it("reads --events as a list of event types, refusing malformed ones", () => {
    expect(eventTypes("machine.started, release.created")).toEqual(["machine.started", "release.created"]);
    expect(() => eventTypes("machine.*")).toThrow(InvalidArgumentError);
    expect(() => eventTypes(",")).toThrow(/event types/);
  });

  it("lists webhooks with their counts, (all) for an org-wide one", () => {
    const table = webhooksTable([
      {
        id: "wh_0123456789abcdef",
        org: "acme",
        app: null,
        url: "https://example.com/h",
        events: ["machine.started", "release.created"],
        created_at: "2026-12-05T01:02:03.456Z",
        pending: 1,
        delivered: 2,
        given_up: 0,
      },
    ]);
    expect(table.split("\n")[1]).toMatch(
      /^wh_0123456789abcdef +\(all\) +https:\/\/example\.com\/h +machine\.started,release\.created +1 +2 +0 +2026-12-05 01:02:03Z/,
    );
  });

  it("shows each delivery's attempts in order: status codes or errors", () => {
    const table = deliveriesTable([
      {
        event_id: "17",
        event_type: "machine.started",
        status: "delivered",
        queued_at: "2026-12-05T01:00:00.000Z",
        attempts: [
          { at: "2026-12-05T01:00:00.100Z", status_code: 500, error: null, duration_ms: 3 },
          { at: "2026-12-05T01:00:10.100Z", status_code: null, error: "timeout", duration_ms: 10_000 },
          { at: "2026-12-05T01:00:30.100Z", status_code: 204, error: null, duration_ms: 2 },
        ],
        next_attempt_at: null,
      },
    ]);
    expect(table.split("\n")[1]).toMatch(
      /^17 +machine\.started +delivered +500 timeout 204 +2026-12-05 01:00:30Z +-/,
    );
  });
});
