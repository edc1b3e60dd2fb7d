import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createContext } from "../context.js";
import { runCli } from "../program.js";
import type { Machine, Release } from "../types.js";
import {
  formatRegions,
  groupSourceConfig,
  knownGroups,
  pickGroup,
  planText,
  scaleGroups,
  scaleShowText,
} from "./scale.js";

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

describe("hangar scale count and vm: the group, the source config, the plan", () => {
  const release = (config: Record<string, unknown>): Release => ({
    version: 4,
    status: "succeeded",
    image: "registry/web@sha256:abc",
    config,
  });

  it("knows the release's groups, else those of the machines", () => {
    const config = { processes: { web: "node server.js", worker: "node worker.js" } };
    expect(knownGroups([], config)).toEqual(["web", "worker"]);
    expect(knownGroups([machine("m1", "web", "iad"), machine("m2", undefined, "iad")], undefined)).toEqual([
      "app",
      "web",
    ]);
    expect(knownGroups([], undefined)).toEqual(["app"]);
  });

  it("takes --process-group when known, the only group without it, and refuses otherwise", () => {
    expect(pickGroup("worker", ["web", "worker"])).toBe("worker");
    expect(pickGroup(undefined, ["app"])).toBe("app");
    expect(() => pickGroup("jobs", ["web", "worker"])).toThrow(
      "process group jobs is not one of the app's process groups (web, worker)",
    );
    expect(() => pickGroup(undefined, ["web", "worker"])).toThrow(/several process groups \(web, worker\)/);
  });

  it("copies a machine of the group on the current release, else any of its machines", () => {
    const old = machine("m1", "web", "iad");
    const current: Machine = {
      ...machine("m2", "web", "iad"),
      config: { image: "web:2", metadata: { fly_process_group: "web", hangar_release: "4" } },
    };
    expect(groupSourceConfig([old, current], "web", release({})).image).toBe("web:2");
    expect(groupSourceConfig([old], "web", release({})).image).toBe("web:1");
  });

  it("makes a group without machines from the release's config, with its group and release", () => {
    const config = groupSourceConfig(
      [],
      "worker",
      release({
        processes: { web: "node server.js", worker: "node worker.js" },
        http_service: { internal_port: 8080, processes: ["web"] },
      }),
    );
    expect(config.image).toBe("registry/web@sha256:abc");
    expect(config.init?.cmd).toEqual(["node", "worker.js"]);
    expect(config.services).toBeUndefined();
    expect(config.metadata).toEqual({ fly_process_group: "worker", hangar_release: "4" });
    expect(() => groupSourceConfig([], "web", undefined)).toThrow(
      /no machine to copy and the app has no release/,
    );
  });

  it("prints the plan as flyctl does", () => {
    const text = planText(
      "shop",
      [
        { group: "worker", region: "local", delta: 2, destroy: [] },
        { group: "worker", region: "", delta: -1, destroy: [] },
      ],
      "shared-cpu-1x",
    );
    expect(text.split("\n")).toEqual([
      "App 'shop' is going to be scaled according to this plan:",
      "  +2 machines for group 'worker' on region 'local' of size 'shared-cpu-1x'",
      "  -1 machines for group 'worker' on the default region of size 'shared-cpu-1x'",
      "",
    ]);
  });
});

describe("hangar scale count and vm refuse bad input before any call", () => {
  /** Runs the CLI in this process with no platform configured: an API call would fail differently. */
  async function run(args: string[]): Promise<{ code: number; stderr: string }> {
    const res = { code: 0, stderr: "" };
    const ctx = createContext({
      env: { HANGAR_HOME: join(tmpdir(), "hangar-scale-test-no-home") },
      cwd: tmpdir(),
      out: () => undefined,
      err: (text) => {
        res.stderr += text;
      },
    });
    res.code = await runCli(args, ctx);
    return res;
  }

  it("a negative or fractional count", async () => {
    for (const n of ["-1", "1.5", "three"]) {
      const res = await run(["scale", "count", n, "-a", "shop", "--process-group", "web", "-y"]);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`${n}: expected the number of machines, a whole number >= 0`);
    }
  });

  it("a VM size flyctl does not know", async () => {
    const res = await run(["scale", "vm", "huge-1x", "-a", "shop"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("huge-1x is not a VM size");
  });

  it("a machine update with nothing to change", async () => {
    const res = await run(["machine", "update", "m1", "-a", "shop"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("nothing to update");
    expect(res.stderr).toContain("--vm-size, --memory or --image");
  });
});
