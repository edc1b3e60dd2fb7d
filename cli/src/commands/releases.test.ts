import { describe, expect, it } from "vitest";
import { releasesTable } from "./releases.js";

describe("releasesTable", () => {
  it("shows version, status, image, build, age and the description or the failure's reason", () => {
    const now = Date.parse("2025-01-01T12:00:00Z");
    const table = releasesTable(
      [
        {
          version: 2,
          status: "failed",
          image: "reg/web@sha256:b",
          build_id: "bld2",
          description: "try",
          reason: "check servicecheck-0-0 of machine m2 is critical",
          created_at: "2025-01-01T11:59:30Z",
        },
        {
          version: 1,
          status: "succeeded",
          image: "reg/web@sha256:a",
          build_id: null,
          created_at: "2025-01-01T10:00:00Z",
        },
      ],
      now,
    );
    expect(table.split("\n")).toEqual([
      "VERSION  STATUS     IMAGE             BUILD  CREATED  DESCRIPTION/REASON",
      "v2       failed     reg/web@sha256:b  bld2   30s ago  check servicecheck-0-0 of machine m2 is critical",
      "v1       succeeded  reg/web@sha256:a         2h ago",
      "",
    ]);
  });
});
