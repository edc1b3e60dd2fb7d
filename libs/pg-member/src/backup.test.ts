import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  archiveCommand,
  backupFolders,
  recoveryArgs,
  recoveryTargetProblem,
  runPsql,
  WAL_FILE_NAME,
} from "./backup.js";

describe("the member's backup pieces", () => {
  it("rejects with its output when psql exits before reading its input, instead of failing on the write (EPIPE)", async () => {
    // A stand-in for a psql that cannot connect: it says so and exits without reading, and the SQL is
    // more than a pipe holds, so the write surely meets a closed pipe.
    const child = spawn(process.execPath, ["-e", "console.error('no server'); process.exit(2)"], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    await expect(runPsql(child, "x".repeat(4 * 1024 * 1024))).rejects.toThrow("psql: no server");
  });

  it("accepts only archived WAL file names (nothing that walks out of the outbox)", () => {
    for (const ok of [
      "000000010000000000000002",
      "00000002.history",
      "000000010000000000000002.00000028.backup",
      "000000010000000000000003.partial",
    ])
      expect(WAL_FILE_NAME.test(ok), ok).toBe(true);
    for (const bad of [
      "../pg_hba.conf",
      "00000001000000000000000",
      "000000010000000000000002.tmp",
      ".000000010000000000000002.1.tmp",
      "0000000100000000000000g2",
      "",
    ])
      expect(WAL_FILE_NAME.test(bad), bad).toBe(false);
  });

  it("keeps the outbox and the restore folders on the volume beside PGDATA", () => {
    expect(backupFolders("/data/postgresql")).toEqual({
      outbox: "/data/wal-outbox",
      restoreWal: "/data/restore-wal",
      restoreBase: "/data/restore-base",
    });
    expect(archiveCommand("/usr/local/bin/node", "/usr/local/lib/hangar/pg-member.mjs")).toBe(
      "'/usr/local/bin/node' '/usr/local/lib/hangar/pg-member.mjs' archive-wal %p %f",
    );
  });

  it("takes RFC 3339 times with a zone as recovery targets, and nothing else", () => {
    expect(recoveryTargetProblem(undefined)).toBeUndefined();
    expect(recoveryTargetProblem("2026-12-05T11:30:00Z")).toBeUndefined();
    expect(recoveryTargetProblem("2026-12-05T11:30:00.123+01:00")).toBeUndefined();
    for (const bad of [
      "2026-12-05 11:30:00",
      "2026-12-05T11:30:00",
      "yesterday",
      5,
      "2026-13-45T11:30:00Z'; DROP",
    ])
      expect(recoveryTargetProblem(bad), String(bad)).toMatch(/RFC 3339/);
  });

  it("recovers in a postgres with no TCP listener, no archiving and no synchronous standbys, then promotes", () => {
    const args = recoveryArgs({
      port: 5433,
      socketDir: "/data/run",
      restoreWal: "/data/restore-wal",
      targetTime: "2026-12-05 11:30:00.000+00",
    });
    const settings = Object.fromEntries(
      args.filter((_, i) => i % 2 === 1).map((kv) => kv.split(/=(.*)/s).slice(0, 2)),
    );
    expect(settings).toMatchObject({
      listen_addresses: "",
      archive_mode: "off",
      synchronous_standby_names: "",
      restore_command: "cp /data/restore-wal/%f %p",
      recovery_target_action: "promote",
      recovery_target_time: "2026-12-05 11:30:00.000+00",
    });
    expect(recoveryArgs({ port: 5433, socketDir: "/r", restoreWal: "/w" }).join(" ")).not.toContain(
      "recovery_target_time=",
    );
  });
});
