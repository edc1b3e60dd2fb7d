import type { Volume } from "@hangar/domain";
import { describe, expect, it } from "vitest";
import { ApiError } from "../http/errors.js";
import { keepUpdateMount, resolveCreateMount } from "./mounts.js";
import { toVolumeView } from "./views.js";

function vol(id: string, over: Partial<Volume> = {}): Volume {
  return {
    id,
    app: "web",
    org: "acme",
    name: "data",
    region: "ams",
    host_id: "h1",
    state: "created",
    size_gb: 1,
    fstype: "ext4",
    encrypted: false,
    snapshot_retention: 5,
    auto_backup_enabled: true,
    attached_machine_id: null,
    attached_alloc_id: null,
    created_at: "2026-12-05T07:00:00.000Z",
    snapshots: [],
    create_command_id: "c",
    ...over,
  };
}

const region = (asked?: string) => ({ asked, fallback: "ams" });

/** The ApiError `fn` throws: its status and message. */
function refusal(fn: () => unknown): { status: number; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return { status: err.status, message: err.message };
    throw err;
  }
  throw new Error("expected a refusal");
}

describe("resolveCreateMount", () => {
  const volumes = [
    vol("vol_a", { attached_machine_id: "m0" }),
    vol("vol_b"),
    vol("vol_c", { region: "fra", host_id: "h2" }),
    vol("vol_gone", { state: "destroyed" }),
  ];

  it("mounts nothing when the config has no mounts", () => {
    expect(resolveCreateMount("web", volumes, { image: "x" }, region())).toBeUndefined();
  });

  it("takes a volume by id in its region, the config naming it by id and name", () => {
    const r = resolveCreateMount("web", volumes, { mounts: [{ volume: "vol_c", path: "/data" }] }, region());
    expect(r?.volume.id).toBe("vol_c");
    expect(r?.region).toBe("fra");
    expect(r?.config.mounts).toEqual([{ volume: "vol_c", name: "data", path: "/data" }]);
  });

  it("picks an unattached volume of the name in the region", () => {
    const r = resolveCreateMount("web", volumes, { mounts: [{ name: "data", path: "/d" }] }, region());
    expect(r?.volume.id).toBe("vol_b");
    expect(r?.config.mounts?.[0]).toMatchObject({ volume: "vol_b", path: "/d" });
  });

  it("refuses a volume in another region than the machine's with 400, naming both", () => {
    const res = refusal(() =>
      resolveCreateMount("web", volumes, { mounts: [{ volume: "vol_c", path: "/d" }] }, region("ams")),
    );
    expect(res).toEqual({ status: 400, message: "volume vol_c is in region fra; the machine is in ams" });
  });

  it("answers an unknown or destroyed volume, or no free one of the name, with 404", () => {
    for (const mount of [{ volume: "vol_x" }, { volume: "vol_gone" }]) {
      expect(
        refusal(() => resolveCreateMount("web", volumes, { mounts: [{ ...mount, path: "/d" }] }, region())),
      ).toMatchObject({ status: 404, message: `volume ${mount.volume} not found in app web` });
    }
    const busy = [vol("vol_a", { attached_machine_id: "m0" })];
    expect(
      refusal(() => resolveCreateMount("web", busy, { mounts: [{ name: "data", path: "/d" }] }, region())),
    ).toMatchObject({
      status: 404,
      message: expect.stringContaining("hangar volumes create data --region ams"),
    });
  });

  it("refuses two mounts, a mount naming nothing, and a volume still being created", () => {
    const two = {
      mounts: [
        { volume: "vol_b", path: "/a" },
        { volume: "vol_c", path: "/b" },
      ],
    };
    expect(refusal(() => resolveCreateMount("web", volumes, two, region())).status).toBe(400);
    expect(
      refusal(() => resolveCreateMount("web", volumes, { mounts: [{ path: "/a" }] }, region())).status,
    ).toBe(400);
    const creating = [vol("vol_n", { state: "creating" })];
    expect(
      refusal(() =>
        resolveCreateMount("web", creating, { mounts: [{ volume: "vol_n", path: "/a" }] }, region()),
      ),
    ).toMatchObject({ status: 412 });
  });
});

describe("keepUpdateMount", () => {
  const current = {
    volume: vol("vol_b", { attached_machine_id: "m1" }),
    mount: { volume: "vol_b", path: "/data" },
  };

  it("keeps the machine's volume when the update names it by id or name, or mounts nothing", () => {
    expect(keepUpdateMount("m1", current, { mounts: [{ name: "data", path: "/new" }] }).mounts).toEqual([
      { volume: "vol_b", name: "data", path: "/new" },
    ]);
    expect(
      keepUpdateMount("m1", current, { mounts: [{ volume: "vol_b", path: "/data" }] }).mounts?.[0]?.volume,
    ).toBe("vol_b");
    expect(keepUpdateMount("m1", current, { image: "x" })).toEqual({
      image: "x",
      mounts: [{ volume: "vol_b", name: "data", path: "/data" }],
    });
  });

  it("refuses another volume, and a volume for a machine that has none", () => {
    expect(
      refusal(() => keepUpdateMount("m1", current, { mounts: [{ volume: "vol_c", path: "/d" }] })).message,
    ).toBe(
      "machine m1 has volume vol_b (data); a machine keeps its volume: create another machine for vol_c",
    );
    expect(
      refusal(() => keepUpdateMount("m1", undefined, { mounts: [{ name: "data", path: "/d" }] })).status,
    ).toBe(400);
    expect(keepUpdateMount("m1", undefined, { image: "x" })).toEqual({ image: "x" });
  });
});

describe("toVolumeView", () => {
  it("shows Fly's fields, the host's figures, or zeros when the host did not answer", () => {
    const v = vol("vol_b");
    const stat = { block_size: 4096, blocks: 10, blocks_free: 5, blocks_avail: 4 };
    const view = toVolumeView(v, stat);
    expect(Object.keys(view).sort()).toEqual(
      [
        "attached_alloc_id",
        "attached_machine_id",
        "auto_backup_enabled",
        "block_size",
        "blocks",
        "blocks_avail",
        "blocks_free",
        "created_at",
        "encrypted",
        "fstype",
        "id",
        "name",
        "region",
        "size_gb",
        "snapshot_retention",
        "state",
        "zone",
      ].sort(),
    );
    expect(view).toMatchObject({ id: "vol_b", zone: "h1", encrypted: false, fstype: "ext4", ...stat });
    expect(toVolumeView(v, undefined)).toMatchObject({
      block_size: 0,
      blocks: 0,
      blocks_free: 0,
      blocks_avail: 0,
    });
  });
});
