import { appendFile, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MachineLog, recentLogs, removeMachineLog } from "./machine-log.js";
import { MachineDir } from "./state.js";

let stateDir: string;
let dir: MachineDir;

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "machine-log-"));
  dir = new MachineDir(stateDir, "m1");
  await dir.prepareRun();
});

afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

describe("MachineLog", () => {
  it("keeps lines with their time and number, and numbering goes on in the next run", async () => {
    const first = await MachineLog.open(dir);
    expect(first.append("stdout", "one")).toMatchObject({ seq: 1, stream: "stdout", line: "one" });
    first.append("stderr", "two");
    first.close();
    const second = await MachineLog.open(dir);
    expect(second.append("stdout", "three").seq).toBe(3);
    second.close();
    // A second close does nothing, and a closed log keeps nothing more.
    second.close();
    expect(() => second.append("stdout", "late")).toThrow(/closed/);
    const kept = await recentLogs(dir, 10);
    expect(kept.map((e) => `${e.seq} ${e.stream} ${e.line}`)).toEqual([
      "1 stdout one",
      "2 stderr two",
      "3 stdout three",
    ]);
    expect(Number.isNaN(Date.parse(kept[0]?.ts ?? ""))).toBe(false);
    expect((await recentLogs(dir, 2)).map((e) => e.line)).toEqual(["two", "three"]);
    expect(await recentLogs(dir, 0)).toEqual([]);
  });

  it("stays bounded: rotates at its size, keeping one older file", async () => {
    const log = await MachineLog.open(dir, 200);
    for (let i = 1; i <= 30; i++) log.append("stdout", `line ${i}`);
    log.close();
    expect((await readdir(dir.path)).filter((f) => f.startsWith("output")).sort()).toEqual([
      "output.log",
      "output.log.1",
    ]);
    const kept = await recentLogs(dir, 1000);
    // Fewer than 30 survive, but the newest always do, in order, and numbering never restarts.
    expect(kept.length).toBeLessThan(30);
    expect(kept.at(-1)?.line).toBe("line 30");
    expect(kept.map((e) => e.seq)).toEqual(kept.map((_, i) => 30 - kept.length + 1 + i));
  });

  it("skips a line cut short, answers nothing for a machine that printed nothing, and is removed on destroy", async () => {
    expect(await recentLogs(dir, 5)).toEqual([]);
    const log = await MachineLog.open(dir);
    log.append("stdout", "whole");
    log.close();
    await appendFile(join(dir.path, "output.log"), '{"ts":"2026-01-01T00:00:00.000Z","seq":2,"str');
    expect((await recentLogs(dir, 5)).map((e) => e.line)).toEqual(["whole"]);
    await removeMachineLog(dir);
    expect(await recentLogs(dir, 5)).toEqual([]);
  });
});
