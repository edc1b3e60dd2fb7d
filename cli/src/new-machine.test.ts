import { describe, expect, it } from "vitest";
import { copiedConfig, mountedOn } from "./new-machine.js";
import type { Volume } from "./types.js";

describe("a new machine like another", () => {
  it("keeps the config but not its standbys", () => {
    const config = copiedConfig({
      image: "web:1",
      env: { A: "1", FLY_STANDBY_FOR: "m1" },
      standbys: ["m1"],
      metadata: { fly_process_group: "web", hangar_release: "3" },
    });
    expect(config).toEqual({
      image: "web:1",
      env: { A: "1" },
      metadata: { fly_process_group: "web", hangar_release: "3" },
    });
  });

  it("mounts its first mount on the new volume, by id", () => {
    const volume = { id: "vol_new", name: "data", size_gb: 3 } as Volume;
    const config = mountedOn(
      { image: "db:1", mounts: [{ volume: "vol_old", name: "data", path: "/data", size_gb: 3 }] },
      volume,
    );
    expect(config.mounts).toEqual([{ volume: "vol_new", path: "/data" }]);
    expect(mountedOn({ image: "web:1" }, volume)).toEqual({ image: "web:1" });
  });
});
