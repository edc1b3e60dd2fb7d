import { describe, expect, it } from "vitest";
import { isSameLiveProcess, readCmdline, readProcStat } from "./proc.js";

describe("readProcStat", () => {
  it("reads this process's state, group and start time", () => {
    const stat = readProcStat(process.pid);
    expect(stat).not.toBeNull();
    expect(stat?.ppid).toBe(process.ppid);
    expect(stat?.startTime).toBeGreaterThan(0);
  });

  it("returns null for a pid that does not exist", () => {
    expect(readProcStat(2 ** 30)).toBeNull();
  });
});

describe("isSameLiveProcess", () => {
  it("tells a live process from a later one with the same pid by its start time", () => {
    const startTime = readProcStat(process.pid)?.startTime ?? -1;
    expect(isSameLiveProcess(process.pid, startTime)).toBe(true);
    expect(isSameLiveProcess(process.pid, startTime + 1)).toBe(false);
  });
});

describe("readCmdline", () => {
  it("splits the argv at NULs", () => {
    // cmdline also holds node's own options, which process.argv leaves out; the script is in both.
    expect(readCmdline(process.pid)).toContain(process.argv[1]);
    expect(readCmdline(2 ** 30)).toBeNull();
  });
});
