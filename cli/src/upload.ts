import { createReadStream } from "node:fs";
import { formatBytes } from "./build-context.js";

/** How often a terminal's progress line is redrawn, at most. */
const REDRAW_MS = 100;
/** Without a terminal, a line at each of these fractions sent. */
const MILESTONES = [0.25, 0.5, 0.75, 1];

/** Reports bytes sent out of `total`: one redrawn line on a terminal, otherwise a line per quarter. */
export class UploadProgress {
  private sent = 0;
  private lastDraw = 0;
  private milestone = 0;

  constructor(
    private readonly total: number,
    private readonly write: (text: string) => void,
    private readonly tty: boolean,
    private readonly now: () => number = Date.now,
  ) {}

  private line(): string {
    const percent = this.total === 0 ? 100 : Math.floor((this.sent / this.total) * 100);
    return `Uploading build context: ${formatBytes(this.sent)} of ${formatBytes(this.total)} (${percent}%)`;
  }

  /** Counts `bytes` more as sent. */
  add(bytes: number): void {
    this.sent += bytes;
    if (this.tty) {
      if (this.now() - this.lastDraw < REDRAW_MS) return;
      this.lastDraw = this.now();
      this.write(`\r${this.line()}\x1b[K`);
      return;
    }
    while (
      this.milestone < MILESTONES.length &&
      this.sent >= (MILESTONES[this.milestone] as number) * this.total &&
      this.sent < this.total
    ) {
      this.milestone++;
      this.write(`${this.line()}\n`);
    }
  }

  /** Ends the report: the final count, on its own line. */
  done(): void {
    this.write(this.tty ? `\r${this.line()}\x1b[K\n` : `${this.line()}\n`);
  }
}

/** Reads a file as a stream of chunks, telling `progress` of each one as it is handed on. */
export async function* readCounted(file: string, progress: UploadProgress): AsyncGenerator<Uint8Array> {
  for await (const chunk of createReadStream(file)) {
    progress.add((chunk as Buffer).length);
    yield chunk as Buffer;
  }
}
