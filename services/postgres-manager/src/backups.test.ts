import type { PgBackup, PgCluster } from "@hangar/domain";
import { describe, expect, it } from "vitest";
import { backupHistory, lsnSegment, walForRestore, walSegment } from "./backup-transfer.js";
import { backupAgeSeconds, backupFor, backupView } from "./backups.js";

const backup = (id: string, status: PgBackup["status"], finished?: number): PgBackup => ({
  backup_id: id,
  member_id: "m0",
  status,
  started_at_ms: (finished ?? 10_000) - 1_000,
  ...(finished === undefined ? {} : { finished_at_ms: finished }),
  ...(status === "completed"
    ? { start_lsn: "0/2000028", timeline: 1, size: 10, stored_size: 2, sha256: "ab" }
    : {}),
});

describe("which base backup a restore starts from", () => {
  const backups = [
    backup("b1", "completed", 10_000),
    backup("b2", "failed", 15_000),
    backup("b3", "completed", 20_000),
    backup("b4", "running"),
  ];

  it("takes the newest completed one finished by the target time, or the newest without one", () => {
    expect(backupFor(backups)?.backup_id).toBe("b3");
    expect(backupFor(backups, 19_999)?.backup_id).toBe("b1");
    expect(backupFor(backups, 20_000)?.backup_id).toBe("b3");
    expect(backupFor(backups, 9_999)).toBeUndefined();
    expect(backupFor([])).toBeUndefined();
  });

  it("gives the backup age from the last completed backup, none without one", () => {
    const c = { backups } as PgCluster;
    expect(backupAgeSeconds(c, 25_000)).toBe(5);
    expect(backupAgeSeconds({ backups: [backup("x", "failed", 1)] } as PgCluster, 25_000)).toBeUndefined();
  });

  it("shows a backup with RFC 3339 times and nulls for what a running one lacks", () => {
    expect(backupView(backup("b4", "running"))).toMatchObject({
      id: "b4",
      status: "running",
      finished_at: null,
      sha256: null,
    });
    expect(backupView(backup("b1", "completed", 10_000))).toMatchObject({
      finished_at: "1970-01-01T00:00:10.000Z",
      timeline: 1,
    });
  });
});

describe("the WAL a restore needs", () => {
  it("reads segment names and LSNs as segment numbers (16 MB segments)", () => {
    expect(walSegment("000000020000000100000003")).toEqual({ timeline: 2, segno: 259 });
    expect(walSegment("00000002.history")).toBeUndefined();
    expect(lsnSegment("0/2000028")).toBe(2);
    expect(lsnSegment("1/3000000")).toBe(259);
    expect(() => lsnSegment("x")).toThrow(/not an LSN/);
  });

  it("takes every history file and the segments from the backup's start on its timeline or later", () => {
    const files = [
      "000000010000000000000001",
      "000000010000000000000002",
      "000000010000000000000002.00000028.backup",
      "000000010000000000000003",
      "000000010000000000000003.partial",
      "00000002.history",
      "000000020000000000000003",
    ];
    expect(walForRestore(files, { start_lsn: "0/2000028", timeline: 1 })).toEqual([
      "000000010000000000000002",
      "000000010000000000000003",
      "00000002.history",
      "000000020000000000000003",
    ]);
    expect(walForRestore(files, { start_lsn: "0/3000000", timeline: 2 })).toEqual([
      "00000002.history",
      "000000020000000000000003",
    ]);
  });

  it("reads a backup history file's label, start LSN and timeline", () => {
    const text = [
      "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)",
      "STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)",
      "CHECKPOINT LOCATION: 0/2000060",
      "BACKUP METHOD: streamed",
      "BACKUP FROM: primary",
      "START TIME: 2026-12-05 11:20:27 UTC",
      "LABEL: hangar-backup-b1",
      "START TIMELINE: 1",
      "STOP TIME: 2026-12-05 11:20:28 UTC",
      "STOP TIMELINE: 1",
    ].join("\n");
    expect(backupHistory(text)).toEqual({ label: "hangar-backup-b1", start_lsn: "0/2000028", timeline: 1 });
    expect(backupHistory("LABEL: x")).toBeUndefined();
  });
});
