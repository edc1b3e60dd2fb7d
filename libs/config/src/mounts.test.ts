import { describe, expect, it } from "vitest";
import { machineConfigFromApp } from "./machine-from-app.js";
import { machineMount, mountIssues, mountVolume, parseVolumeSizeGb } from "./mounts.js";
import { AppConfigError, parseAppConfig } from "./parse-app-config.js";

function issuesOf(text: string): string[] {
  try {
    parseAppConfig(text, "fly.toml");
  } catch (err) {
    if (err instanceof AppConfigError) return err.message.split("\n");
    throw err;
  }
  throw new Error("expected an AppConfigError");
}

describe("parseVolumeSizeGb", () => {
  it("reads sizes as flyctl does: whole numbers are GB, units are decimal, rounded down", () => {
    expect(parseVolumeSizeGb(10)).toBe(10);
    expect(parseVolumeSizeGb("10")).toBe(10);
    expect(parseVolumeSizeGb("1gb")).toBe(1);
    expect(parseVolumeSizeGb("10GB")).toBe(10);
    expect(parseVolumeSizeGb("3 GB")).toBe(3);
    expect(parseVolumeSizeGb("2g")).toBe(2);
    expect(parseVolumeSizeGb("1.5gb")).toBe(1);
    expect(parseVolumeSizeGb("1tb")).toBe(1000);
    expect(parseVolumeSizeGb("500mb")).toBe(0);
  });

  it("refuses what is not a size", () => {
    expect(parseVolumeSizeGb("lots")).toBeUndefined();
    expect(parseVolumeSizeGb("10 gigs")).toBeUndefined();
    expect(parseVolumeSizeGb("")).toBeUndefined();
    expect(parseVolumeSizeGb(1.5)).toBeUndefined();
  });
});

describe("mountIssues", () => {
  const base = { source: "data", destination: "/data" };

  it("accepts a mount with every key within flyctl's limits", () => {
    expect(
      mountIssues({
        ...base,
        initial_size: "10gb",
        snapshot_retention: 60,
        auto_extend_size_threshold: 80,
        auto_extend_size_increment: "1GB",
        auto_extend_size_limit: "500GB",
      }),
    ).toEqual([]);
  });

  it("refuses sizes below 1 GB or outside the auto-extend ranges, and retention outside 1-60 days", () => {
    expect(mountIssues({ ...base, initial_size: "500mb" }).map((i) => i.key)).toEqual(["initial_size"]);
    expect(mountIssues({ ...base, snapshot_retention: 0 }).map((i) => i.key)).toEqual(["snapshot_retention"]);
    expect(
      mountIssues({
        ...base,
        auto_extend_size_threshold: 40,
        auto_extend_size_increment: "101gb",
        auto_extend_size_limit: "501gb",
      }).map((i) => i.key),
    ).toEqual(["auto_extend_size_increment", "auto_extend_size_limit", "auto_extend_size_threshold"]);
  });

  it("needs a threshold and an increment once any auto-extend key is set, and a limit not below the size", () => {
    expect(mountIssues({ ...base, auto_extend_size_limit: "5gb" }).map((i) => i.key)).toEqual([
      "auto_extend_size_threshold",
      "auto_extend_size_increment",
    ]);
    expect(
      mountIssues({
        ...base,
        initial_size: 10,
        auto_extend_size_threshold: 80,
        auto_extend_size_increment: "1gb",
        auto_extend_size_limit: "5gb",
      }),
    ).toEqual([{ key: "auto_extend_size_limit", message: "expected at least the initial size (10GB)" }]);
  });
});

describe("[mounts] in fly.toml", () => {
  const FLY_TOML = `app = "notes"
primary_region = "local"

[mounts]
  source = "data"
  destination = "/data"
  initial_size = "3gb"
  snapshot_retention = 7
  scheduled_snapshots = false
  auto_extend_size_threshold = 80
  auto_extend_size_increment = "1GB"
  auto_extend_size_limit = "10GB"
`;

  it("becomes the machine's mount by volume name with flyctl's auto-extend fields", () => {
    const { config, warnings } = parseAppConfig(FLY_TOML, "fly.toml");
    expect(warnings).toEqual([]);
    expect(machineConfigFromApp(config, "img").mounts).toEqual([
      { name: "data", path: "/data", extend_threshold_percent: 80, add_size_gb: 1, size_gb_limit: 10 },
    ]);
  });

  it("gives the volume a deploy creates: name, initial size and snapshot settings", () => {
    const { config } = parseAppConfig(FLY_TOML, "fly.toml");
    const mount = config.mounts?.[0];
    if (!mount) throw new Error("no mount parsed");
    expect(mountVolume(mount)).toEqual({
      name: "data",
      size_gb: 3,
      snapshot_retention: 7,
      auto_backup_enabled: false,
    });
    expect(mountVolume({ source: "data", destination: "/data" })).toEqual({ name: "data", size_gb: 1 });
    expect(machineMount({ source: "data", destination: "/data" })).toEqual({ name: "data", path: "/data" });
  });

  it("accepts initial_size as a number of GB (kept as flyctl keeps it, a string)", () => {
    const { config } = parseAppConfig('[mounts]\nsource = "d"\ndestination = "/d"\ninitial_size = 5\n', "f");
    expect(config.mounts?.[0]?.initial_size).toBe("5");
    expect(parseVolumeSizeGb(config.mounts?.[0]?.initial_size ?? "")).toBe(5);
  });

  it("reports each invalid value with its line and key", () => {
    const text = `app = "notes"

[mounts]
  source = "data"
  destination = "/data"
  initial_size = "lots"
  snapshot_retention = 90
  auto_extend_size_increment = "1gb"
`;
    expect(issuesOf(text)).toEqual([
      "fly.toml:3: mounts.auto_extend_size_threshold: required with the other auto_extend_size keys, expected a percentage between 50 and 99, got nothing",
      'fly.toml:6: mounts.initial_size: expected a size such as "1gb", "10GB" or a number of GB, got "lots"',
      "fly.toml:7: mounts.snapshot_retention: expected between 1 and 60 days, got 90",
    ]);
  });
});

describe("[mount], which flyctl reads as [mounts]", () => {
  it("puts its tables before those of [mounts], as flyctl's patchMounts does, and reports its problems at its own line", () => {
    const text =
      '[mounts]\n  source = "a"\n  destination = "/a"\n  processes = ["web"]\n\n[mount]\n  source = "b"\n  destination = "/b"\n';
    expect(parseAppConfig(text, "fly.toml").config.mounts?.map((m) => m.source)).toEqual(["b", "a"]);
    expect(issuesOf('[mount]\n  source = "b"\n  destination = "/b"\n  initial_size = "0gb"\n')).toEqual([
      'fly.toml:4: mount.initial_size: expected a size at least 1GB (sizes are rounded down to whole GB), got "0gb"',
    ]);
  });
});
