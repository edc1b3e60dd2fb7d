import { spawn } from "node:child_process";

/** The most output a step keeps for its event (the events carry at most 64 KiB). */
export const OUTPUT_TAIL_BYTES = 64 * 1024;

/** One line a command wrote. */
export interface OutputLine {
  stream: "stdout" | "stderr";
  line: string;
}

/** How a command ended, with the end of what it wrote (both streams, interleaved as read). */
export interface CommandOutcome {
  exitCode: number;
  /** Set when a signal ended it. */
  signal: NodeJS.Signals | null;
  output: string;
}

/** Keeps the last `limit` bytes of text, cut at a line start when it had to drop some. */
export class OutputTail {
  private chunks: string[] = [];
  private size = 0;

  constructor(private readonly limit = OUTPUT_TAIL_BYTES) {}

  push(text: string): void {
    this.chunks.push(text);
    this.size += Buffer.byteLength(text);
    while (this.size > this.limit * 2 && this.chunks.length > 1) {
      this.size -= Buffer.byteLength(this.chunks.shift() as string);
    }
  }

  toString(): string {
    const all = Buffer.from(this.chunks.join(""));
    if (all.length <= this.limit) return all.toString();
    const cut = all.subarray(all.length - this.limit).toString();
    const nl = cut.indexOf("\n");
    return nl >= 0 && nl < cut.length - 1 ? cut.slice(nl + 1) : cut;
  }
}

/**
 * Splits a command's output into lines as it comes, for `onLine`, and keeps the end of it (both
 * streams, interleaved as read).
 */
export class OutputCollector {
  private readonly tail = new OutputTail();
  private readonly pending: Record<OutputLine["stream"], string> = { stdout: "", stderr: "" };

  constructor(private readonly onLine?: (l: OutputLine) => void) {}

  /** Takes a chunk one stream wrote. */
  push(stream: OutputLine["stream"], chunk: Buffer): void {
    const text = chunk.toString();
    this.tail.push(text);
    const lines = (this.pending[stream] + text).split("\n");
    this.pending[stream] = lines.pop() ?? "";
    for (const line of lines) this.onLine?.({ stream, line });
  }

  /** Hands on the last unfinished lines and returns the output's tail. */
  finish(): string {
    for (const stream of ["stdout", "stderr"] as const) {
      if (this.pending[stream] !== "") this.onLine?.({ stream, line: this.pending[stream] });
      this.pending[stream] = "";
    }
    return this.tail.toString();
  }
}

/**
 * Runs a command to its end, handing each output line to `onLine` as it comes. An abort signal
 * kills it (SIGKILL: a build step has nothing to save).
 */
export function runCommand(
  argv: string[],
  opts: { onLine?: (l: OutputLine) => void; signal?: AbortSignal; cwd?: string } = {},
): Promise<CommandOutcome> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new Error("runCommand needs a program"));
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      stdio: ["ignore", "pipe", "pipe"],
      signal: opts.signal,
      killSignal: "SIGKILL",
    });
    const output = new OutputCollector(opts.onLine);
    child.stdout.on("data", (b: Buffer) => output.push("stdout", b));
    child.stderr.on("data", (b: Buffer) => output.push("stderr", b));
    child.once("error", reject);
    child.once("close", (code, signal) => {
      resolve({ exitCode: code ?? (signal ? 128 : -1), signal, output: output.finish() });
    });
  });
}
