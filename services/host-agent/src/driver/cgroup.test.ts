import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  CgroupFreezer,
  cgroupScope,
  freezerHierarchies,
  parseFlatKeyed,
  parseFreezerState,
  parseMountinfo,
  parsePids,
} from "./cgroup.js";

/** A hybrid host: v1 controllers, the v1 freezer among them, and a v2 tree at /sys/fs/cgroup/unified. */
const HYBRID = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`;

/** A unified (v2 only) host, with optional fields before the separator. */
const UNIFIED = `25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
29 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot`;

describe("parseMountinfo", () => {
  it("reads mount point, type and super options, past optional fields", () => {
    expect(parseMountinfo(UNIFIED)).toEqual([
      { mountPoint: "/", fsType: "ext4", superOptions: ["rw"] },
      {
        mountPoint: "/sys/fs/cgroup",
        fsType: "cgroup2",
        superOptions: ["rw", "nsdelegate", "memory_recursiveprot"],
      },
    ]);
  });

  it("unescapes octal escapes in paths and skips lines it cannot read", () => {
    const text = "50 1 0:40 / /mnt/with\\040space rw - cgroup cgroup rw,cpu,freezer\n\ngarbage line\n";
    expect(parseMountinfo(text)).toEqual([
      { mountPoint: "/mnt/with space", fsType: "cgroup", superOptions: ["rw", "cpu", "freezer"] },
    ]);
  });
});

describe("freezerHierarchies", () => {
  it("on a hybrid host, puts the v2 tree before the v1 freezer (v2 thaws faster)", () => {
    expect(freezerHierarchies(parseMountinfo(HYBRID))).toEqual([
      { version: 2, mountPoint: "/sys/fs/cgroup/unified" },
      { version: 1, mountPoint: "/sys/fs/cgroup/freezer" },
    ]);
  });

  it("on a unified host, finds /sys/fs/cgroup before any other cgroup2 mount", () => {
    const other = "90 1 0:50 / /run/other rw - cgroup2 cgroup2 rw";
    expect(freezerHierarchies(parseMountinfo(`${other}\n${UNIFIED}`))).toEqual([
      { version: 2, mountPoint: "/sys/fs/cgroup" },
      { version: 2, mountPoint: "/run/other" },
    ]);
  });

  it("takes a v1 freezer co-mounted with other controllers, and nothing without a freezer", () => {
    expect(freezerHierarchies(parseMountinfo("1 0 0:1 / /cg rw - cgroup cgroup rw,cpu,freezer"))).toEqual([
      { version: 1, mountPoint: "/cg" },
    ]);
    const noFreezer =
      "31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n25 1 8:1 / / rw - ext4 x rw";
    expect(freezerHierarchies(parseMountinfo(noFreezer))).toEqual([]);
  });
});

describe("control files", () => {
  it("parses freezer.state, cgroup.events and cgroup.procs", () => {
    expect(parseFreezerState("FROZEN\n")).toBe("FROZEN");
    expect(parseFreezerState("FREEZING\n")).toBe("FREEZING");
    expect(parseFreezerState("THAWED")).toBe("THAWED");
    expect(parseFreezerState("frozen")).toBeNull();
    expect(parseFlatKeyed("populated 1\nfrozen 0\n")).toEqual(
      new Map([
        ["populated", "1"],
        ["frozen", "0"],
      ]),
    );
    expect(parsePids("12\n345\n\n")).toEqual([12, 345]);
    expect(parsePids("")).toEqual([]);
  });
});

describe("cgroupScope", () => {
  it("is stable for a state folder, however it is written, and differs between folders", () => {
    expect(cgroupScope("/var/lib/hangar/h1")).toBe(cgroupScope("/var/lib/hangar/./h1/"));
    expect(cgroupScope("/var/lib/hangar/h1")).not.toBe(cgroupScope("/var/lib/hangar/h2"));
    expect(cgroupScope("/x")).toMatch(/^agent-[0-9a-f]{16}$/);
  });
});

describe("CgroupFreezer.detect", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** A folder standing in for a mounted hierarchy; `control` is the file a real one has in every cgroup. */
  function fakeHierarchy(control?: string): string {
    const dir = mkdtempSync(join(tmpdir(), "hangar-cgroup-test-"));
    dirs.push(dir);
    if (control) {
      mkdirSync(join(dir, "hangar"));
      writeFileSync(join(dir, "hangar", control), "");
    }
    return dir;
  }

  it("says why there is no freezer: nothing mounted, or none of the version asked for", () => {
    expect(CgroupFreezer.detect("s", { mountinfo: "25 1 8:1 / / rw - ext4 x rw" })).toEqual({
      reason: "no cgroup freezer is mounted (neither cgroup2 nor v1 freezer)",
    });
    expect(CgroupFreezer.detect("s", { mountinfo: UNIFIED, version: 1 })).toEqual({
      reason: "no cgroup freezer is mounted (no cgroup v1)",
    });
  });

  it("uses the first hierarchy whose hangar folder has the freeze control, scoped per agent", () => {
    const v2 = fakeHierarchy("cgroup.freeze");
    const v1 = fakeHierarchy("freezer.state");
    const mountinfo = `1 0 0:1 / ${v2} rw - cgroup2 cgroup2 rw\n2 0 0:2 / ${v1} rw - cgroup cgroup rw,freezer`;
    const found = CgroupFreezer.detect("agent-1", { mountinfo });
    if (!("freezer" in found)) throw new Error(found.reason);
    expect(found.freezer.mode).toBe("cgroup-v2");
    expect(found.freezer.machine("m1").path).toBe(join(v2, "hangar", "agent-1", "m1"));
    const onlyV1 = CgroupFreezer.detect("agent-1", { mountinfo, version: 1 });
    expect("freezer" in onlyV1 && onlyV1.freezer.scopePath).toBe(join(v1, "hangar", "agent-1"));
  });

  it("falls through a hierarchy without the control (a kernel before 5.2) and reports each reason", () => {
    const old = fakeHierarchy();
    const found = CgroupFreezer.detect("a", { mountinfo: `1 0 0:1 / ${old} rw - cgroup2 cgroup2 rw` });
    expect(found).toEqual({ reason: `${join(old, "hangar")} has no cgroup.freeze` });
  });
});
