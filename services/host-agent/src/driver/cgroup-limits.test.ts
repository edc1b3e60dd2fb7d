import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseMountinfo } from "./cgroup.js";
import { CgroupLimits, guestLimits, limitHierarchies, MachineLimits } from "./cgroup-limits.js";

/** This project's CI host: v1 controllers, one per hierarchy, and a v2 tree without controllers. */
const HYBRID = `31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`;

const UNIFIED = "29 22 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate";

describe("guestLimits", () => {
  it("gives a shared-cpu-1x one core of quota, 1/16 of a performance vCPU's weight, 256 MiB and 1024 pids", () => {
    expect(guestLimits({ cpus: 1, cpuKind: "shared", memoryMb: 256 })).toEqual({
      cpuQuotaUs: 100_000,
      cpuPeriodUs: 100_000,
      cpuWeight: 6,
      cpuShares: 64,
      memoryBytes: 256 * 1024 * 1024,
      swapBytes: 0,
      pidsMax: 1024,
    });
  });

  it("gives swap as the config's swap_size_mb asks (fly.toml swap_size_mb), none without it", () => {
    expect(guestLimits({ cpus: 1, cpuKind: "shared", memoryMb: 256, swapMb: 512 }).swapBytes).toBe(
      512 * 1024 * 1024,
    );
  });

  it("scales quota and weight with cpus, and pids with memory up to a guest kernel's pid_max", () => {
    const perf = guestLimits({ cpus: 4, cpuKind: "performance", memoryMb: 8192 });
    expect(perf).toMatchObject({ cpuQuotaUs: 400_000, cpuWeight: 400, cpuShares: 4096, pidsMax: 32_768 });
    expect(guestLimits({ cpus: 2, cpuKind: "shared", memoryMb: 2048 }).pidsMax).toBe(8192);
  });
});

describe("limitHierarchies", () => {
  it("on the hybrid host, takes each controller from its v1 hierarchy (the v2 tree offers none)", () => {
    expect(limitHierarchies(parseMountinfo(HYBRID), () => [])).toEqual([
      { version: 1, mountPoint: "/sys/fs/cgroup/cpu", controllers: ["cpu"] },
      { version: 1, mountPoint: "/sys/fs/cgroup/memory", controllers: ["memory"] },
      { version: 1, mountPoint: "/sys/fs/cgroup/pids", controllers: ["pids"] },
    ]);
  });

  it("prefers v2 for the controllers it offers, and v1 for the rest", () => {
    const offered = (mountPoint: string) =>
      mountPoint === "/sys/fs/cgroup/unified" ? ["memory", "pids"] : [];
    expect(limitHierarchies(parseMountinfo(HYBRID), offered)).toEqual([
      { version: 1, mountPoint: "/sys/fs/cgroup/cpu", controllers: ["cpu"] },
      { version: 2, mountPoint: "/sys/fs/cgroup/unified", controllers: ["memory", "pids"] },
    ]);
  });

  it("on a v2 host, puts all three in one cgroup, and leaves out what no hierarchy has", () => {
    expect(
      limitHierarchies(parseMountinfo(UNIFIED), () => ["cpuset", "cpu", "io", "memory", "pids"]),
    ).toEqual([{ version: 2, mountPoint: "/sys/fs/cgroup", controllers: ["cpu", "memory", "pids"] }]);
    expect(limitHierarchies(parseMountinfo(UNIFIED), () => ["memory"])).toEqual([
      { version: 2, mountPoint: "/sys/fs/cgroup", controllers: ["memory"] },
    ]);
  });

  it("says which controller is missing when the host cannot limit", () => {
    const noPids = HYBRID.split("\n")
      .filter((l) => !l.includes("pids"))
      .join("\n");
    expect(CgroupLimits.detect({ mountinfo: noPids })).toEqual({
      reason: "no cgroup hierarchy has the pids controller",
    });
  });
});

describe("MachineLimits control files", () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "cgroup-limits-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const read = (...path: string[]) => readFileSync(join(root, ...path), "utf8");

  it("v2: enables the controllers down the tree and writes cpu.max, cpu.weight, memory.max, no swap, pids.max", () => {
    const path = join(root, "hangar", "agent-1", "m1");
    const limits = new MachineLimits([{ version: 2, path, controllers: ["cpu", "memory", "pids"] }]);
    limits.create();
    writeFileSync(join(path, "memory.swap.max"), "max");
    limits.apply({ cpus: 2, cpuKind: "performance", memoryMb: 512 });
    for (const dir of [[], ["hangar"], ["hangar", "agent-1"]])
      expect(read(...dir, "cgroup.subtree_control")).toBe("+cpu +memory +pids");
    const m1 = ["hangar", "agent-1", "m1"];
    expect(read(...m1, "cpu.max")).toBe("200000 100000");
    expect(read(...m1, "cpu.weight")).toBe("200");
    expect(read(...m1, "memory.max")).toBe(String(512 * 1024 * 1024));
    expect(read(...m1, "memory.swap.max")).toBe("0");
    expect(read(...m1, "pids.max")).toBe("2048");
    expect(limits.procsFiles).toEqual([join(path, "cgroup.procs")]);
  });

  it("v1: one cgroup per hierarchy; memory+swap equal to memory, or swappiness 0 without swap accounting", () => {
    const at = (name: string) => join(root, name, "hangar", "agent-1", "m1");
    const limits = new MachineLimits([
      { version: 1, path: at("cpu"), controllers: ["cpu"] },
      { version: 1, path: at("memory"), controllers: ["memory"] },
      { version: 1, path: at("pids"), controllers: ["pids"] },
    ]);
    limits.create();
    writeFileSync(join(at("memory"), "memory.memsw.limit_in_bytes"), "");
    limits.apply({ cpus: 1, cpuKind: "shared", memoryMb: 256 });
    expect(read("cpu", "hangar", "agent-1", "m1", "cpu.cfs_quota_us")).toBe("100000");
    expect(read("cpu", "hangar", "agent-1", "m1", "cpu.shares")).toBe("64");
    expect(read("memory", "hangar", "agent-1", "m1", "memory.limit_in_bytes")).toBe(
      String(256 * 1024 * 1024),
    );
    expect(read("memory", "hangar", "agent-1", "m1", "memory.memsw.limit_in_bytes")).toBe(
      String(256 * 1024 * 1024),
    );
    expect(read("pids", "hangar", "agent-1", "m1", "pids.max")).toBe("1024");

    // swap_size_mb: memory+swap is memory plus the swap asked for.
    limits.apply({ cpus: 1, cpuKind: "shared", memoryMb: 256, swapMb: 512 });
    expect(read("memory", "hangar", "agent-1", "m1", "memory.memsw.limit_in_bytes")).toBe(
      String(768 * 1024 * 1024),
    );

    rmSync(join(at("memory"), "memory.memsw.limit_in_bytes"));
    limits.apply({ cpus: 1, cpuKind: "shared", memoryMb: 256 });
    expect(read("memory", "hangar", "agent-1", "m1", "memory.swappiness")).toBe("0");
    limits.apply({ cpus: 1, cpuKind: "shared", memoryMb: 256, swapMb: 512 });
    expect(read("memory", "hangar", "agent-1", "m1", "memory.swappiness")).not.toBe("0");
  });

  it("v2: memory.swap.max is the swap asked for", () => {
    const path = join(root, "hangar", "agent-1", "m2");
    const limits = new MachineLimits([{ version: 2, path, controllers: ["memory"] }]);
    limits.create();
    writeFileSync(join(path, "memory.swap.max"), "max");
    limits.apply({ cpus: 1, cpuKind: "shared", memoryMb: 256, swapMb: 128 });
    expect(read("hangar", "agent-1", "m2", "memory.swap.max")).toBe(String(128 * 1024 * 1024));
  });

  it("counts OOM kills from a run's start, from v1 memory.oom_control or v2 memory.events", () => {
    const v1 = join(root, "v1");
    const v2 = join(root, "v2");
    mkdirSync(v1);
    mkdirSync(v2);
    writeFileSync(join(v1, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
    writeFileSync(join(v2, "memory.events"), "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n");
    const limitsV1 = new MachineLimits([{ version: 1, path: v1, controllers: ["memory"] }]).startRun();
    const limitsV2 = MachineLimits.fromRef(
      new MachineLimits([{ version: 2, path: v2, controllers: ["memory"] }]).startRun().ref,
    );
    expect([limitsV1.oomKillsAtStart, limitsV2.oomKillsAtStart]).toEqual([2, 1]);
    expect(limitsV1.oomKilledSinceStart()).toBe(false);
    writeFileSync(join(v1, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
    expect(limitsV1.oomKilledSinceStart()).toBe(true);
    rmSync(v2, { recursive: true });
    expect(limitsV2.oomKilledSinceStart()).toBe(false);
  });
});
