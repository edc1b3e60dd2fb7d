import { describe, expect, it } from "vitest";
import { backupsTable, type PgBackup, restoreTime } from "./postgres-backup.js";

describe("hangar postgres backup", () => {
  it("takes RFC 3339 restore times with a zone and refuses others before any call", () => {
    expect(restoreTime("2026-12-05T11:30:00Z")).toBe("2026-12-05T11:30:00Z");
    expect(restoreTime("2026-12-05T12:30:00.5+01:00")).toBe("2026-12-05T12:30:00.5+01:00");
    for (const bad of ["2026-12-05 11:30:00", "2026-12-05T11:30:00", "yesterday", "2026-02-31T99:00:00Z"])
      expect(() => restoreTime(bad), bad).toThrow(/RFC 3339/);
  });

  it("lists backups with their sizes, LSN and timeline, and why a failed one failed", () => {
    const done: PgBackup = {
      id: "20261205113000000-ab12cd",
      status: "completed",
      member_id: "m1",
      started_at: "2026-12-05T11:30:00.000Z",
      finished_at: "2026-12-05T11:30:04.000Z",
      start_lsn: "0/2000028",
      timeline: 1,
      size: 31_457_280,
      stored_size: 4_194_304,
      sha256: "a".repeat(64),
      error: null,
    };
    const failed: PgBackup = {
      ...done,
      id: "x",
      status: "failed",
      finished_at: null,
      size: null,
      stored_size: null,
      start_lsn: null,
      timeline: null,
      error: "pg_basebackup failed",
    };
    const lines = backupsTable([done, failed]).trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+STATUS\s+STARTED\s+FINISHED\s+SIZE\s+STORED\s+START LSN\s+TIMELINE$/);
    expect(lines[1]).toMatch(/completed .*30\.0MB\s+4\.0MB\s+0\/2000028\s+1$/);
    expect(lines[2]).toMatch(/failed: pg_basebackup failed .* -\s+-\s+-\s+-$/);
  });
});
