import type { Volume } from "@hangar/domain";
import type { VolumeStat } from "@hangar/service";
import { describe, expect, it } from "vitest";
import { autoExtendTarget, staleVolumes } from "./host-volumes.js";

const stat = (usedPercent: number): VolumeStat => ({
  size_gb: 10,
  block_size: 4096,
  blocks: 1000,
  blocks_free: 1000 - usedPercent * 10,
  blocks_avail: 1000 - usedPercent * 10,
  used_bytes: usedPercent * 10 * 4096,
  mounted: true,
});

describe("autoExtendTarget", () => {
  const mount = {
    volume: "vol_0000000000000001",
    path: "/data",
    extend_threshold_percent: 80,
    add_size_gb: 5,
  };

  it("grows a volume whose use crossed the threshold by the increment, up to the limit", () => {
    expect(autoExtendTarget(mount, 10, stat(85))).toBe(15);
    expect(autoExtendTarget({ ...mount, size_gb_limit: 12 }, 10, stat(85))).toBe(12);
  });

  it("leaves a volume below its threshold, at its limit, or without auto-extend settings", () => {
    expect(autoExtendTarget(mount, 10, stat(79))).toBeNull();
    expect(autoExtendTarget({ ...mount, size_gb_limit: 10 }, 10, stat(95))).toBeNull();
    expect(autoExtendTarget({ volume: mount.volume, path: "/data" }, 10, stat(99))).toBeNull();
  });
});

describe("staleVolumes", () => {
  const volume = (id: string, state: Volume["state"]) => ({ id, state }) as Volume;

  it("names the disks of destroyed or failed volumes and of volumes no event places here", () => {
    const local = ["vol_a", "vol_b", "vol_c", "vol_d", "vol_e"];
    const onHost = [
      volume("vol_a", "created"),
      volume("vol_b", "destroyed"),
      volume("vol_c", "failed"),
      volume("vol_e", "creating"),
    ];
    expect(staleVolumes(local, onHost)).toEqual(["vol_b", "vol_c", "vol_d"]);
  });
});
