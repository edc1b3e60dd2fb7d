import { closeSync, fstatSync, openSync, renameSync, writeSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { MachineDir } from "./state.js";
import type { LogStream } from "./types.js";

/** One line of a machine's output as its host keeps it. */
export interface LogEntry {
  /** When the agent read the line: ISO 8601 with milliseconds in UTC. */
  ts: string;
  /**
   * Numbers the machine's lines, across runs and agent restarts: tells a line from a repeat of the
   * same text, so a reader that gets one line twice (kept and live) can drop the second.
   */
  seq: number;
  stream: LogStream;
  line: string;
}

/** How many bytes of kept output a machine's current file holds before it is rotated (one older file stays). */
export const DEFAULT_LOG_BYTES = 1024 * 1024;

const CURRENT = "output.log";
const ROTATED = "output.log.1";

/**
 * The output a machine printed, kept in its state folder as JSON lines: `output.log`, renamed to
 * `output.log.1` once it holds `maxBytes` (replacing the older one), so a machine never keeps more
 * than twice that. The agent writes it as it reads the machine's stdout and stderr, which is what
 * gives each line its time and number; `recentLogs` reads it back.
 */
export class MachineLog {
  /** null once closed: a descriptor number is reused by the next open, so it is never closed twice. */
  #fd: number | null;
  #bytes: number;
  #seq: number;

  private constructor(
    private readonly dir: MachineDir,
    private readonly maxBytes: number,
    lastSeq: number,
  ) {
    this.#fd = openSync(join(dir.path, CURRENT), "a", 0o600);
    this.#bytes = fstatSync(this.#fd).size;
    this.#seq = lastSeq;
  }

  /** Opens the machine's log for appending; numbering goes on from the last line kept. */
  static async open(dir: MachineDir, maxBytes = DEFAULT_LOG_BYTES): Promise<MachineLog> {
    const [last] = await recentLogs(dir, 1);
    return new MachineLog(dir, maxBytes, last?.seq ?? 0);
  }

  /** Keeps one line; returns it with its time and number. */
  append(stream: LogStream, line: string): LogEntry {
    if (this.#fd === null) throw new Error(`the log of machine ${this.dir.machineId} is closed`);
    const entry: LogEntry = { ts: new Date().toISOString(), seq: ++this.#seq, stream, line };
    // Synchronous, so lines land in the order they were read and a reader never sees half a line.
    const bytes = Buffer.from(`${JSON.stringify(entry)}\n`);
    writeSync(this.#fd, bytes);
    this.#bytes += bytes.length;
    if (this.#bytes >= this.maxBytes) this.#rotate();
    return entry;
  }

  /** Closes the file; closing again does nothing (a run's end and the driver's close may both do it). */
  close(): void {
    if (this.#fd === null) return;
    closeSync(this.#fd);
    this.#fd = null;
  }

  #rotate(): void {
    if (this.#fd === null) return;
    closeSync(this.#fd);
    renameSync(join(this.dir.path, CURRENT), join(this.dir.path, ROTATED));
    this.#fd = openSync(join(this.dir.path, CURRENT), "a", 0o600);
    this.#bytes = 0;
  }
}

/** The last `limit` lines the machine printed, oldest first; none for a machine that printed nothing. */
export async function recentLogs(dir: MachineDir, limit: number): Promise<LogEntry[]> {
  const entries: LogEntry[] = [];
  for (const name of [ROTATED, CURRENT]) {
    const text = await readFile(join(dir.path, name), "utf8").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return "";
      throw err;
    });
    for (const line of text.split("\n")) {
      const entry = parseEntry(line);
      if (entry) entries.push(entry);
    }
  }
  return limit > 0 ? entries.slice(-limit) : [];
}

/** Deletes the machine's kept output (destroy). */
export async function removeMachineLog(dir: MachineDir): Promise<void> {
  await Promise.all([CURRENT, ROTATED].map((name) => rm(join(dir.path, name), { force: true })));
}

function parseEntry(text: string): LogEntry | undefined {
  if (text === "") return undefined;
  try {
    const v = JSON.parse(text) as Partial<LogEntry>;
    const ok =
      typeof v.ts === "string" &&
      typeof v.seq === "number" &&
      (v.stream === "stdout" || v.stream === "stderr") &&
      typeof v.line === "string";
    return ok ? (v as LogEntry) : undefined;
  } catch {
    // A line cut by a crash mid-write (a full disk) is skipped, not fatal to the rest.
    return undefined;
  }
}
