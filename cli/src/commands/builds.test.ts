import { describe, expect, it } from "vitest";
import { buildsTable } from "./builds.js";

describe("hangar builds list", () => {
  it("shows a failed build's error and a finished one's image", () => {
    const now = Date.parse("2026-12-05T05:00:00Z");
    const table = buildsTable(
      [
        {
          id: "01B",
          app: "web",
          status: "failed",
          created_at: "2026-12-05T04:58:00Z",
          duration_ms: 1500,
          error: { message: "build cancelled" },
        },
        { id: "01A", app: "web", status: "succeeded", image_ref: "registry.hangar.internal/web@sha256:ab" },
      ],
      now,
    );
    const [header, failed, ok] = table.trimEnd().split("\n");
    expect(header).toMatch(/^ID\s+STATUS\s+CREATED\s+DURATION\s+IMAGE\/ERROR$/);
    expect(failed).toMatch(/^01B\s+failed\s+2m ago\s+1\.5s\s+build cancelled$/);
    expect(ok).toMatch(/^01A\s+succeeded\s+registry\.hangar\.internal\/web@sha256:ab$/);
  });
});
