import { appendFile, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitFor } from "../../../test/wait.js";
import type { LogEntry } from "../machine-log.js";
import { recentLogs } from "../machine-log.js";
import { OutputPart } from "./output.js";
import { runSetup, teardownOf } from "./testing.js";

let stateDir: string;

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "output-part-"));
});

afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

describe("OutputPart", () => {
  it("tails a run's output from where it starts, keeps each line numbered, and hands it on", async () => {
    const seen: Array<[string, LogEntry]> = [];
    const part = new OutputPart((id, entry) => seen.push([id, entry]));
    const run = runSetup(stateDir, "m1");
    await run.dir.prepareRun();
    // Output of an earlier run is not this run's.
    await appendFile(run.dir.logFile("stdout"), "earlier\n");
    await part.prepare(run);
    await appendFile(run.dir.logFile("stdout"), "out\n");
    await appendFile(run.dir.logFile("stderr"), "err");
    await waitFor("the stdout line", () => (seen.length === 1 ? true : undefined));
    await run.output?.drain();
    await run.output?.close();
    expect(seen.map(([id, e]) => `${id} ${e.seq} ${e.stream} ${e.line}`)).toEqual([
      "m1 1 stdout out",
      "m1 2 stderr err",
    ]);
    expect((await recentLogs(run.dir, 10)).map((e) => e.line)).toEqual(["out", "err"]);
  });

  it("releases the machine's raw and kept output", async () => {
    const part = new OutputPart(() => {});
    const run = runSetup(stateDir, "m1");
    await run.dir.prepareRun();
    await part.prepare(run);
    await appendFile(run.dir.logFile("stdout"), "out\n");
    await run.output?.drain();
    await run.output?.close();
    await part.release(teardownOf(run));
    expect(await readdir(run.dir.path)).toEqual([]);
    // Nothing left to release is not an error.
    await part.release(teardownOf(run));
  });
});
