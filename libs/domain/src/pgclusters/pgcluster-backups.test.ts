import { type DomainErrorCode, deciderSpec, fold, isDomainError } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import { type PgClusterCommand, type PgClusterEvent, pgClusterDecider } from "./pgcluster.js";

const spec = deciderSpec(pgClusterDecider);
const code = (c: DomainErrorCode) => (e: unknown) => isDomainError(e, c);
const cluster = "db1";

const spec1 = {
  cluster,
  org: "o",
  region: "local",
  vmSize: "shared-cpu-1x",
  cpus: 1,
  memoryMb: 256,
  volumeSizeGb: 1,
  initialSize: 1,
  image: "hangar/postgres-member:15",
  requestedAtMs: 1_000,
  commandId: "c1",
};
const requested: PgClusterEvent = { type: "PgClusterCreateRequested", data: spec1 };
const ready: PgClusterEvent[] = [
  requested,
  { type: "PgMemberAdded", data: { cluster, memberId: "m0", index: 0, volumeId: "vol_0", hostId: "h1" } },
  { type: "PgMemberReady", data: { cluster, memberId: "m0", role: "primary", timeline: 1 } },
  { type: "PgClusterReady", data: { cluster, primaryId: "m0" } },
];
const start: PgClusterCommand = { type: "StartBackup", backupId: "b1", memberId: "m0", startedAtMs: 5_000 };
const started: PgClusterEvent = {
  type: "PgBackupStarted",
  data: { cluster, backupId: "b1", memberId: "m0", startedAtMs: 5_000 },
};
const complete: PgClusterCommand = {
  type: "CompleteBackup",
  backupId: "b1",
  startLsn: "0/2000028",
  timeline: 1,
  size: 30_000_000,
  storedSize: 4_000_000,
  sha256: "a".repeat(64),
  finishedAtMs: 9_000,
};
const completed: PgClusterEvent = {
  type: "PgBackupCompleted",
  data: {
    cluster,
    backupId: "b1",
    startLsn: "0/2000028",
    timeline: 1,
    size: 30_000_000,
    storedSize: 4_000_000,
    sha256: "a".repeat(64),
    startedAtMs: 5_000,
    finishedAtMs: 9_000,
  },
};

describe("base backups", () => {
  it("starts a backup on a ready cluster's member and completes it with its facts", () => {
    spec.given(ready).when(start).then([started]);
    spec
      .given([...ready, started])
      .when(complete)
      .then([completed]);
    const state = fold(pgClusterDecider, [...ready, started, completed]);
    expect(state?.backups).toEqual([
      {
        backup_id: "b1",
        member_id: "m0",
        status: "completed",
        started_at_ms: 5_000,
        finished_at_ms: 9_000,
        start_lsn: "0/2000028",
        timeline: 1,
        size: 30_000_000,
        stored_size: 4_000_000,
        sha256: "a".repeat(64),
      },
    ]);
  });

  it("answers a repeated step with no events", () => {
    spec
      .given([...ready, started])
      .when(start)
      .then([]);
    spec
      .given([...ready, started, completed])
      .when(complete)
      .then([]);
  });

  it("refuses a second running backup, a cluster not ready, an unknown member or backup, a bad id", () => {
    spec
      .given([...ready, started])
      .when({ ...start, backupId: "b2" })
      .thenThrows(code("failed_precondition"));
    spec.given([requested]).when(start).thenThrows(code("failed_precondition"));
    spec
      .given(ready)
      .when({ ...start, memberId: "nope" })
      .thenThrows(code("not_found"));
    spec
      .given(ready)
      .when({ ...start, backupId: "../x" })
      .thenThrows(code("invalid_argument"));
    spec.given(ready).when(complete).thenThrows(code("not_found"));
    spec
      .given([...ready, started])
      .when({ ...complete, sha256: "" })
      .thenThrows(code("invalid_argument"));
  });

  it("fails a running backup once; a failed backup is not completed later, and the next may start", () => {
    const failed: PgClusterEvent = {
      type: "PgBackupFailed",
      data: { cluster, backupId: "b1", reason: "cut" },
    };
    spec
      .given([...ready, started])
      .when({ type: "FailBackup", backupId: "b1", reason: "cut" })
      .then([failed]);
    spec
      .given([...ready, started, failed])
      .when(complete)
      .thenThrows(code("failed_precondition"));
    spec
      .given([...ready, started, failed])
      .when({ ...start, backupId: "b2" })
      .then([
        { type: "PgBackupStarted", data: { cluster, backupId: "b2", memberId: "m0", startedAtMs: 5_000 } },
      ]);
    expect(fold(pgClusterDecider, [...ready, started, failed])?.backups[0]).toMatchObject({
      status: "failed",
      error: "cut",
    });
  });
});

describe("restore into a new cluster", () => {
  it("records where the first member is restored from", () => {
    const restore = { from: "src", backupId: "b1", targetTime: "2026-12-05T11:30:00.000Z" };
    const event: PgClusterEvent = {
      type: "PgClusterCreateRequested",
      data: {
        ...spec1,
        restoreFrom: "src",
        restoreBackupId: "b1",
        restoreTargetTime: "2026-12-05T11:30:00.000Z",
      },
    };
    spec
      .given([])
      .when({ type: "CreatePgCluster", ...spec1, restore })
      .then([event]);
    expect(fold(pgClusterDecider, [event])?.restore).toEqual({
      from: "src",
      backup_id: "b1",
      target_time: "2026-12-05T11:30:00.000Z",
    });
    expect(fold(pgClusterDecider, [requested])?.restore).toBeUndefined();
  });
});
