import { describe, expect, it } from "vitest";
import { CliError } from "../cli-error.js";
import type { Release } from "../types.js";
import { releasesTable, rollbackTarget } from "./releases.js";

describe("releasesTable", () => {
  it("shows version, status, image, build, age, strategy, who, and the description or what went wrong", () => {
    const now = Date.parse("2025-01-01T12:00:00Z");
    const table = releasesTable(
      [
        {
          version: 3,
          status: "succeeded",
          image: "reg/web@sha256:a",
          created_at: "2025-01-01T11:59:50Z",
          strategy: "rolling",
          deployed_by: "deploy token t1",
          rollback_of: 1,
          description: "rollback to v1",
        },
        {
          version: 2,
          status: "failed",
          image: "reg/web@sha256:b",
          build_id: "bld2",
          description: "try",
          reason: "check servicecheck-0-0 of machine m2 is critical",
          strategy: "canary",
          rolled_back_to: 1,
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
      "VERSION  STATUS     IMAGE             BUILD  CREATED  STRATEGY  BY               DESCRIPTION/REASON",
      "v3       succeeded  reg/web@sha256:a         10s ago  rolling   deploy token t1  rollback to v1; redeploys v1",
      "v2       failed     reg/web@sha256:b  bld2   30s ago  canary                     check servicecheck-0-0 of machine m2 is critical; rolled back to v1",
      "v1       succeeded  reg/web@sha256:a         2h ago",
      "",
    ]);
  });
});

describe("releasesTable, edge releases", () => {
  it("shows an edge release's bundle, shortened, where an image release shows its image", () => {
    const bundle = `sha256:${"ab".repeat(32)}`;
    const table = releasesTable(
      [{ version: 1, status: "succeeded", image: "", edge: { bundle, cpu_ms: 50, memory_mb: 128 } }],
      Date.now(),
    );
    expect(table.split("\n")[1]).toMatch(/^v1 +succeeded +edge sha256:abababababab(\s|$)/);
  });
});

describe("releasesTable, a launch's first release", () => {
  it("says how its seed_command ended, or that it runs", () => {
    const seeded = (seed_command: Release["seed_command"]): Release => ({
      version: 1,
      status: "succeeded",
      image: "img",
      seed_command,
    });
    const line = (r: Release) => releasesTable([r], Date.now()).split("\n")[1];
    expect(line(seeded({ machine_id: "m", exit_code: 0, error: null }))).toMatch(/seed_command exited 0$/);
    expect(line(seeded({ machine_id: "m", exit_code: null, error: null }))).toMatch(/seed_command running$/);
    expect(line(seeded({ machine_id: "m", exit_code: null, error: "did not exit within 300 s" }))).toMatch(
      /seed_command did not exit within 300 s$/,
    );
    expect(line(seeded(null))).not.toMatch(/seed_command/);
  });
});

describe("rollbackTarget", () => {
  const r = (version: number, status: Release["status"]): Release => ({ version, status });
  const list = [r(4, "failed"), r(3, "succeeded"), r(2, "succeeded"), r(1, "succeeded")];

  it("goes back to the release that served before the current one, or the one named", () => {
    expect(rollbackTarget(list, undefined).version).toBe(2);
    expect(rollbackTarget(list, 1).version).toBe(1);
  });

  it("refuses a release that never served, one that does not exist, and an app with nothing before", () => {
    expect(() => rollbackTarget(list, 4)).toThrow(/only a release that served/);
    expect(() => rollbackTarget(list, 9)).toThrow(CliError);
    expect(() => rollbackTarget([r(1, "succeeded")], undefined)).toThrow(/nothing to roll back to/);
  });
});
