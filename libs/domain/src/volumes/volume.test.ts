import { type DomainErrorCode, deciderSpec, fold, isDomainError } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import {
  expiredSnapshots,
  isSnapshotId,
  isVolumeId,
  newSnapshotId,
  newVolumeId,
  type VolumeCommand,
  type VolumeEvent,
  volumeDecider,
} from "./volume.js";

const spec = deciderSpec(volumeDecider);
const code = (c: DomainErrorCode) => (e: unknown) => isDomainError(e, c);
const at = "2026-12-05T07:00:00.000Z";

const create: VolumeCommand = {
  type: "CreateVolume",
  volumeId: "vol_0123456789abcdef",
  app: "a",
  org: "o",
  name: "data",
  region: "local",
  hostId: "h1",
  sizeGb: 1,
  snapshotRetention: 5,
  autoBackupEnabled: true,
  commandId: "c1",
  at,
};
const requested: VolumeEvent = {
  type: "VolumeCreateRequested",
  data: {
    volumeId: "vol_0123456789abcdef",
    app: "a",
    org: "o",
    name: "data",
    region: "local",
    hostId: "h1",
    sizeGb: 1,
    snapshotRetention: 5,
    autoBackupEnabled: true,
    sourceSnapshotId: "",
    sourceVolumeId: "",
    commandId: "c1",
    createdAt: at,
  },
};
const created: VolumeEvent = { type: "VolumeCreated", data: { hostId: "h1" } };
const ready = [requested, created];
const attached = (machineId: string): VolumeEvent => ({ type: "VolumeAttached", data: { machineId } });
const started = (snapshotId: string, createdAt = at): VolumeEvent => ({
  type: "VolumeSnapshotStarted",
  data: { snapshotId, type: "on_demand", retentionDays: 5, createdAt },
});

describe("volume ids", () => {
  it("have Fly's shapes", () => {
    expect(isVolumeId(newVolumeId())).toBe(true);
    expect(newSnapshotId()).toMatch(/^vs_[0-9a-f]{16}$/);
    expect(isVolumeId("vol_short")).toBe(false);
    expect(isVolumeId(`vol_${"a".repeat(17)}`)).toBe(false);
    expect(isVolumeId("vol_ABCDEF0123456789")).toBe(false);
    expect(isSnapshotId(newSnapshotId())).toBe(true);
    expect(isSnapshotId(newSnapshotId("seed"))).toBe(true);
    for (const bad of [
      "vs_1",
      "vs_0123456789ABCDEF",
      `vs_${"0".repeat(17)}`,
      newVolumeId(),
      "vs_0123456789abcde.",
    ])
      expect(isSnapshotId(bad), bad).toBe(false);
    expect(newVolumeId("create-1")).toBe(newVolumeId("create-1"));
    expect(newVolumeId("create-1")).not.toBe(newVolumeId("create-2"));
  });
});

describe("volume decider: create", () => {
  it("records the create with its host, then created", () => {
    spec.given([]).when(create).then([requested]);
    spec.given([requested]).when({ type: "MarkCreated" }).then([created]);
    const v = fold(volumeDecider, ready);
    expect(v).toMatchObject({
      state: "created",
      host_id: "h1",
      size_gb: 1,
      fstype: "ext4",
      encrypted: false,
    });
  });

  it("answers the same create again with nothing, and refuses another create of the same id", () => {
    spec.given(ready).when(create).then([]);
    spec
      .given(ready)
      .when({ ...create, commandId: "c2" })
      .thenThrows(code("already_exists"));
  });

  it("refuses bad names, sizes and retentions", () => {
    for (const name of ["Data", "with-dash", "", "a".repeat(31)])
      spec
        .given([])
        .when({ ...create, name })
        .thenThrows(code("invalid_argument"));
    for (const sizeGb of [0, 501, 1.5])
      spec
        .given([])
        .when({ ...create, sizeGb })
        .thenThrows(code("invalid_argument"));
    for (const snapshotRetention of [0, 61])
      spec
        .given([])
        .when({ ...create, snapshotRetention })
        .thenThrows(code("invalid_argument"));
    spec
      .given([])
      .when({ ...create, hostId: "" })
      .thenThrows(code("invalid_argument"));
  });

  it("records a failed create once, and never marks a failed volume created", () => {
    const failed: VolumeEvent = { type: "VolumeCreateFailed", data: { reason: "disk full" } };
    spec.given([requested]).when({ type: "FailCreate", reason: "disk full" }).then([failed]);
    spec.given([requested, failed]).when({ type: "FailCreate", reason: "again" }).then([]);
    spec.given([requested, failed]).when({ type: "MarkCreated" }).thenThrows(code("failed_precondition"));
    spec.given(ready).when({ type: "FailCreate", reason: "late" }).thenThrows(code("failed_precondition"));
  });
});

describe("volume decider: attach, detach, destroy", () => {
  it("attaches once; the same machine again is a no-op; another machine is a conflict", () => {
    spec
      .given(ready)
      .when({ type: "AttachVolume", machineId: "m1" })
      .then([attached("m1")]);
    spec
      .given([...ready, attached("m1")])
      .when({ type: "AttachVolume", machineId: "m1" })
      .then([]);
    spec
      .given([...ready, attached("m1")])
      .when({ type: "AttachVolume", machineId: "m2" })
      .thenThrows(code("conflict"));
  });

  it("attaches nothing to a volume that is not made yet or is gone", () => {
    spec
      .given([requested])
      .when({ type: "AttachVolume", machineId: "m1" })
      .thenThrows(code("failed_precondition"));
    spec
      .given([...ready, { type: "VolumeDestroyRequested", data: {} }, { type: "VolumeDestroyed", data: {} }])
      .when({ type: "AttachVolume", machineId: "m1" })
      .thenThrows(code("not_found"));
  });

  it("detaches only the attached machine", () => {
    const detached: VolumeEvent = { type: "VolumeDetached", data: { machineId: "m1", reason: "requested" } };
    spec
      .given([...ready, attached("m1")])
      .when({ type: "DetachVolume", machineId: "m1", reason: "requested" })
      .then([detached]);
    spec
      .given([...ready, attached("m1")])
      .when({ type: "DetachVolume", machineId: "m2", reason: "requested" })
      .then([]);
    spec
      .given([...ready, attached("m1"), detached])
      .when({ type: "AttachVolume", machineId: "m2" })
      .then([attached("m2")]);
  });

  it("refuses to destroy an attached volume, saying which machine holds it", () => {
    spec
      .given([...ready, attached("m1")])
      .when({ type: "RequestDestroy" })
      .thenThrows(
        (e) =>
          isDomainError(e, "conflict") &&
          e.message === "volume vol_0123456789abcdef is attached to machine m1; destroy the machine first",
      );
  });

  it("destroys in two steps, each once", () => {
    const destroying: VolumeEvent = { type: "VolumeDestroyRequested", data: {} };
    const destroyed: VolumeEvent = { type: "VolumeDestroyed", data: {} };
    spec.given(ready).when({ type: "RequestDestroy" }).then([destroying]);
    spec
      .given([...ready, destroying])
      .when({ type: "RequestDestroy" })
      .then([]);
    spec
      .given([...ready, destroying])
      .when({ type: "CompleteDestroy" })
      .then([destroyed]);
    spec
      .given([...ready, destroying, destroyed])
      .when({ type: "CompleteDestroy" })
      .then([]);
    spec.given(ready).when({ type: "CompleteDestroy" }).thenThrows(code("failed_precondition"));
    spec.given([]).when({ type: "RequestDestroy" }).thenThrows(code("not_found"));
  });

  it("refuses to destroy while it is being created or snapshotted", () => {
    spec.given([requested]).when({ type: "RequestDestroy" }).thenThrows(code("failed_precondition"));
    spec
      .given([...ready, started("vs_1")])
      .when({ type: "RequestDestroy" })
      .thenThrows(code("failed_precondition"));
  });
});

describe("volume decider: update and extend", () => {
  it("updates retention and scheduled snapshots, and refuses a bad retention", () => {
    spec
      .given(ready)
      .when({ type: "UpdateVolume", snapshotRetention: 10 })
      .then([{ type: "VolumeUpdated", data: { snapshotRetention: 10, autoBackupEnabled: true } }]);
    spec.given(ready).when({ type: "UpdateVolume", snapshotRetention: 5 }).then([]);
    spec
      .given(ready)
      .when({ type: "UpdateVolume", snapshotRetention: 61 })
      .thenThrows(code("invalid_argument"));
    spec.given([]).when({ type: "UpdateVolume", autoBackupEnabled: false }).thenThrows(code("not_found"));
  });

  it("extends only to a larger size, in two steps", () => {
    const asked: VolumeEvent = { type: "VolumeExtendRequested", data: { sizeGb: 2 } };
    spec.given(ready).when({ type: "RequestExtend", sizeGb: 2 }).then([asked]);
    spec
      .given([...ready, asked])
      .when({ type: "RequestExtend", sizeGb: 2 })
      .then([]);
    spec
      .given([...ready, asked])
      .when({ type: "RequestExtend", sizeGb: 3 })
      .thenThrows(code("failed_precondition"));
    spec
      .given([...ready, asked])
      .when({ type: "CompleteExtend", sizeGb: 2 })
      .then([{ type: "VolumeExtended", data: { sizeGb: 2 } }]);
    for (const sizeGb of [1, 0, 501])
      spec.given(ready).when({ type: "RequestExtend", sizeGb }).thenThrows(code("invalid_argument"));
    const v = fold(volumeDecider, [...ready, asked, { type: "VolumeExtended", data: { sizeGb: 2 } }]);
    expect(v).toMatchObject({ state: "created", size_gb: 2 });
  });

  it("keeps the old size when the host could not grow it", () => {
    const asked: VolumeEvent = { type: "VolumeExtendRequested", data: { sizeGb: 2 } };
    const failed: VolumeEvent = { type: "VolumeExtendFailed", data: { sizeGb: 2, reason: "no room" } };
    spec
      .given([...ready, asked])
      .when({ type: "FailExtend", sizeGb: 2, reason: "no room" })
      .then([failed]);
    expect(fold(volumeDecider, [...ready, asked, failed])).toMatchObject({ state: "created", size_gb: 1 });
  });
});

describe("volume decider: snapshots", () => {
  const completed: VolumeEvent = {
    type: "VolumeSnapshotCompleted",
    data: { snapshotId: "vs_1", size: 1024, storedSize: 100, digest: "sha256:x", freezeMs: 3 },
  };
  const complete: VolumeCommand = {
    type: "CompleteSnapshot",
    snapshotId: "vs_1",
    size: 1024,
    storedSize: 100,
    digest: "sha256:x",
    freezeMs: 3,
  };

  it("starts one snapshot at a time, each once", () => {
    const start: VolumeCommand = { type: "StartSnapshot", snapshotId: "vs_1", snapshotType: "on_demand", at };
    spec
      .given(ready)
      .when(start)
      .then([started("vs_1")]);
    spec
      .given([...ready, started("vs_1")])
      .when(start)
      .then([]);
    spec
      .given([...ready, started("vs_1")])
      .when({ ...start, snapshotId: "vs_2" })
      .thenThrows(code("failed_precondition"));
    spec.given([requested]).when(start).thenThrows(code("failed_precondition"));
  });

  it("completes a snapshot, or records it failed, never both", () => {
    spec
      .given([...ready, started("vs_1")])
      .when(complete)
      .then([completed]);
    spec
      .given([...ready, started("vs_1"), completed])
      .when(complete)
      .then([]);
    const failed: VolumeEvent = {
      type: "VolumeSnapshotFailed",
      data: { snapshotId: "vs_1", reason: "freeze" },
    };
    spec
      .given([...ready, started("vs_1")])
      .when({ type: "FailSnapshot", snapshotId: "vs_1", reason: "freeze" })
      .then([failed]);
    spec
      .given([...ready, started("vs_1"), failed])
      .when(complete)
      .thenThrows(code("failed_precondition"));
    spec.given(ready).when(complete).thenThrows(code("not_found"));
    const v = fold(volumeDecider, [...ready, started("vs_1"), completed]);
    expect(v?.snapshots).toMatchObject([{ id: "vs_1", state: "created", size: 1024, digest: "sha256:x" }]);
  });

  it("finds the snapshots past their retention", () => {
    const old = started("vs_old", "2026-11-01T00:00:00.000Z");
    const done = (id: string): VolumeEvent => ({ ...completed, data: { ...completed.data, snapshotId: id } });
    const v = fold(volumeDecider, [...ready, old, done("vs_old"), started("vs_new"), done("vs_new")]);
    if (v === null) throw new Error("no volume");
    expect(expiredSnapshots(v, Date.parse(at)).map((s) => s.id)).toEqual(["vs_old"]);
    spec
      .given([...ready, old, done("vs_old")])
      .when({ type: "DeleteSnapshot", snapshotId: "vs_old" })
      .then([{ type: "VolumeSnapshotDeleted", data: { snapshotId: "vs_old" } }]);
    spec.given(ready).when({ type: "DeleteSnapshot", snapshotId: "vs_old" }).then([]);
  });
});
