import { describe, expect, it } from "vitest";
import type { Machine } from "../types.js";
import { formatRegions, scaleGroups, scaleShowText } from "./scale.js";

const machine = (
  id: string,
  group: string | undefined,
  region: string,
  extra: Partial<Machine> = {},
): Machine => ({
  id,
  region,
  state: "started",
  config: {
    image: "web:1",
    guest:
      group === "worker"
        ? { cpu_kind: "performance", cpus: 2, memory_mb: 4096 }
        : { cpu_kind: "shared", cpus: 1, memory_mb: 256 },
    ...(group ? { metadata: { fly_process_group: group } } : {}),
  },
  ...extra,
});

describe("hangar scale show", () => {
  it("groups machines by process group, sorted, with the first's guest and the regions counted", () => {
    const groups = scaleGroups([
      machine("m1", "web", "iad"),
      machine("m2", "worker", "lhr"),
      machine("m3", "web", "iad"),
      machine("m4", "web", "lhr"),
      machine("m5", undefined, "iad"),
      machine("m6", "web", "iad", { state: "destroyed" }),
      { id: "m7", region: "iad", state: "started" },
    ]);
    expect(groups).toEqual([
      { Process: "app", Count: 1, CPUKind: "shared", CPUs: 1, Memory: 256, Regions: { iad: 1 } },
      { Process: "web", Count: 3, CPUKind: "shared", CPUs: 1, Memory: 256, Regions: { iad: 2, lhr: 1 } },
      { Process: "worker", Count: 1, CPUKind: "performance", CPUs: 2, Memory: 4096, Regions: { lhr: 1 } },
    ]);
  });

  it("prints regions as flyctl does, and the table", () => {
    expect(formatRegions({ lhr: 1, iad: 2 })).toBe("iad(2),lhr");
    const text = scaleShowText(
      "shop",
      scaleGroups([machine("m1", "web", "iad"), machine("m2", "web", "iad")]),
    );
    expect(text.split("\n")).toEqual([
      "VM Resources for app: shop",
      "",
      "Groups",
      "NAME  COUNT  KIND    CPUS  MEMORY  REGIONS",
      "web   2      shared  1     256 MB  iad(2)",
      "",
    ]);
  });
});
