import { describe, expect, it } from "vitest";
import { ago, formatTable } from "./table.js";

describe("formatTable", () => {
  it("aligns columns two spaces apart without trailing spaces", () => {
    const text = formatTable(
      ["ID", "STATE", "NOTE"],
      [
        ["3d8d", "started", ""],
        ["a", "stopped", "long note"],
      ],
    );
    expect(text).toBe(["ID    STATE    NOTE", "3d8d  started", "a     stopped  long note", ""].join("\n"));
  });
});

describe("ago", () => {
  const now = Date.parse("2025-01-31T12:00:00Z");
  it("says how long ago, in the largest whole unit", () => {
    expect(ago("2025-01-31T11:59:48Z", now)).toBe("12s ago");
    expect(ago("2025-01-31T11:55:00Z", now)).toBe("5m ago");
    expect(ago("2025-01-31T09:00:00Z", now)).toBe("3h ago");
    expect(ago("2025-01-29T12:00:00Z", now)).toBe("2d ago");
    expect(ago(now - 1000, now)).toBe("1s ago");
  });

  it("passes through what is not a time", () => {
    expect(ago(undefined, now)).toBe("");
    expect(ago("soon", now)).toBe("soon");
  });
});
