import { describe, expect, it } from "vitest";
import { limitFiles } from "./build-cgroup.js";

const limits = { memoryBytes: 512 * 2 ** 20, cpus: 1.5, pids: 256 };

describe("a build's cgroup limits", () => {
  it("are one folder per v1 controller: memory, CPU quota per 100 ms period, pids", () => {
    expect(Object.fromEntries(limitFiles(false, "b1", limits))).toEqual({
      "/sys/fs/cgroup/memory/hangar-builds/b1": { "memory.limit_in_bytes": "536870912" },
      "/sys/fs/cgroup/cpu/hangar-builds/b1": { "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "150000" },
      "/sys/fs/cgroup/pids/hangar-builds/b1": { "pids.max": "256" },
    });
  });

  it("are one folder under cgroup v2", () => {
    expect(Object.fromEntries(limitFiles(true, "b1", limits))).toEqual({
      "/sys/fs/cgroup/hangar-builds/b1": {
        "memory.max": "536870912",
        "cpu.max": "150000 100000",
        "pids.max": "256",
      },
    });
  });
});
