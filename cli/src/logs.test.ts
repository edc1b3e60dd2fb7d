import { describe, expect, it } from "vitest";
import { formatLogEntry } from "./logs.js";

describe("formatLogEntry", () => {
  it("prints time, machine, region, level and line as flyctl does", () => {
    expect(
      formatLogEntry({
        timestamp: "2026-12-04T12:00:00.123Z",
        message: "listening on :8080",
        level: "info",
        instance: "3d8d",
        region: "local",
      }),
    ).toBe("2026-12-04T12:00:00.123Z app[3d8d] local [info] listening on :8080");
  });
});
