import { rm } from "node:fs/promises";
import { LogTail } from "../log-tail.js";
import { DEFAULT_LOG_BYTES, type LogEntry, MachineLog, removeMachineLog } from "../machine-log.js";
import type { MachineDir } from "../state.js";
import type { LogStream } from "../types.js";
import type { MachinePart, MachineTeardown, RunSetup } from "./part.js";

/** stdout before stderr: the order of the wrapper's descriptors 1 and 2. */
export const STREAMS: readonly LogStream[] = ["stdout", "stderr"];

/** Where the lines of a machine go once kept: the driver's log listeners. */
export type LineSink = (machineId: string, entry: LogEntry) => void;

/** The tails of one run's stdout and stderr, and the machine's kept log they write to. */
export class RunOutput {
  constructor(
    private readonly tails: readonly LogTail[],
    private readonly log: MachineLog,
  ) {}

  /** Reads what was appended since the last read (the driver's fallback for a missed inotify event). */
  poke(): void {
    for (const tail of this.tails) tail.poke();
  }

  /** Reads to the end, unterminated last lines included: the run is over. */
  async drain(): Promise<void> {
    await Promise.all(this.tails.map((tail) => tail.drain()));
  }

  async close(): Promise<void> {
    await Promise.all(this.tails.map((tail) => tail.close()));
    this.log.close();
  }
}

/**
 * The machine's output: the wrapper appends the app's stdout and stderr to files in the state
 * folder (files, not pipes, so the machine outlives the agent); the agent tails them, keeps each line
 * with its time and number in the machine's bounded log (see MachineLog), hands it to `sink`, and
 * empties a raw file it has read once it passes the bound.
 */
export class OutputPart implements MachinePart {
  readonly name = "output";

  constructor(
    private readonly sink: LineSink,
    private readonly maxBytes = DEFAULT_LOG_BYTES,
  ) {}

  /** Tails this run's output from where it starts appending. */
  async prepare(run: RunSetup): Promise<void> {
    run.output = await this.attach(run.spec.machineId, run.dir);
  }

  /**
   * Tails the machine's output from the end of its files: for a new run, where it starts appending;
   * for an adopted one, lines written while no agent ran are skipped.
   */
  async attach(machineId: string, dir: MachineDir): Promise<RunOutput> {
    const log = await MachineLog.open(dir, this.maxBytes);
    const opened = await Promise.allSettled(
      STREAMS.map((stream) =>
        LogTail.open(dir.logFile(stream), "end", (line) => this.sink(machineId, log.append(stream, line)), {
          truncateAboveBytes: this.maxBytes,
        }),
      ),
    );
    const tails = opened.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const failed = opened.find((r) => r.status === "rejected");
    if (failed) {
      await new RunOutput(tails, log).close();
      throw failed.reason;
    }
    return new RunOutput(tails, log);
  }

  /** Deletes the machine's raw output and its kept log. */
  async release({ dir }: MachineTeardown): Promise<void> {
    await Promise.all(STREAMS.map((stream) => rm(dir.logFile(stream), { force: true })));
    await removeMachineLog(dir);
  }
}
