import { type FSWatcher, watch } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";

/** Longer lines are cut into pieces of this many bytes, so one runaway line cannot fill memory. */
const MAX_LINE_BYTES = 64 * 1024;
const READ_BYTES = 64 * 1024;

/** Cuts a byte stream into lines; keeps the incomplete tail (and incomplete UTF-8) for the next chunk. */
export class LineSplitter {
  #rest: Buffer = Buffer.alloc(0);

  /** The complete lines that `chunk` finishes, without their "\n" (or "\r\n"). */
  push(chunk: Buffer): string[] {
    const data = this.#rest.length > 0 ? Buffer.concat([this.#rest, chunk]) : chunk;
    const lines: string[] = [];
    let start = 0;
    for (let nl = data.indexOf(0x0a, start); nl !== -1; nl = data.indexOf(0x0a, start)) {
      cut(data.subarray(start, nl), lines);
      start = nl + 1;
    }
    let rest = data.subarray(start);
    if (rest.length >= MAX_LINE_BYTES) {
      const whole = rest.length - (rest.length % MAX_LINE_BYTES);
      cut(rest.subarray(0, whole), lines);
      rest = rest.subarray(whole);
    }
    // A copy: `chunk` is a read buffer its owner reuses.
    this.#rest = Buffer.from(rest);
    return lines;
  }

  /** The unterminated last line, if any (at the end of the stream). */
  flush(): string | null {
    if (this.#rest.length === 0) return null;
    const line = decodeLine(this.#rest);
    this.#rest = Buffer.alloc(0);
    return line;
  }
}

/** Appends `line` to `lines`, in pieces of at most MAX_LINE_BYTES. */
function cut(line: Buffer, lines: string[]): void {
  if (line.length <= MAX_LINE_BYTES) {
    lines.push(decodeLine(line));
    return;
  }
  for (let at = 0; at < line.length; at += MAX_LINE_BYTES) {
    lines.push(decodeLine(line.subarray(at, at + MAX_LINE_BYTES)));
  }
}

function decodeLine(bytes: Buffer): string {
  const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
  return bytes.toString("utf8", 0, end);
}

/**
 * Follows a log file from an offset and hands out complete lines. inotify (fs.watch) wakes it up;
 * `poke()` is the fallback the driver calls on its timer, and `drain()` reads to the end once more.
 * With `truncateAboveBytes`, a file read to its end that holds more is emptied, so a machine's raw
 * output stays bounded (its lines are kept elsewhere once read). The machine appends (O_APPEND), so
 * it goes on writing at the new end; as with logrotate's copytruncate, what it writes between the
 * last read and the truncation is lost, a window of one system call.
 */
export class LogTail {
  readonly #file: FileHandle;
  readonly #onLine: (line: string) => void;
  readonly #truncateAbove: number;
  readonly #splitter = new LineSplitter();
  readonly #buffer = Buffer.alloc(READ_BYTES);
  #watcher: FSWatcher | null = null;
  #offset: number;
  #pumping: Promise<void> | null = null;
  /** Cleared by `#pump` itself, with no await after its last look at `#again`. */
  #busy = false;
  #again = false;
  #closed = false;

  private constructor(
    file: FileHandle,
    offset: number,
    onLine: (line: string) => void,
    truncateAbove: number,
  ) {
    this.#file = file;
    this.#offset = offset;
    this.#onLine = onLine;
    this.#truncateAbove = truncateAbove;
  }

  /** Tails `path` from byte `offset`, or from its current end when `offset` is "end". */
  static async open(
    path: string,
    offset: number | "end",
    onLine: (line: string) => void,
    options: { truncateAboveBytes?: number } = {},
  ): Promise<LogTail> {
    // a+ creates a log file that went missing; reads still go by offset.
    const file = await open(path, "a+", 0o600);
    const start = offset === "end" ? (await file.stat()).size : offset;
    const tail = new LogTail(file, start, onLine, options.truncateAboveBytes ?? Number.POSITIVE_INFINITY);
    try {
      tail.#watcher = watch(path, { persistent: false }, () => tail.poke());
      tail.#watcher.on("error", () => tail.#unwatch());
    } catch {
      // Without inotify the driver's timer still pokes the tail.
    }
    tail.poke();
    return tail;
  }

  /** Reads whatever was appended since the last read. */
  poke(): void {
    if (this.#closed) return;
    this.#again = true;
    if (this.#busy) return;
    this.#busy = true;
    this.#pumping = this.#pump().catch(() => {
      // A failed read (file deleted under us) loses nothing: the next poke reads from the same offset.
    });
  }

  /** Reads to the end of the file and emits the unterminated last line too: the writer is gone. */
  async drain(): Promise<void> {
    this.poke();
    while (this.#busy) await this.#pumping;
    const last = this.#splitter.flush();
    if (last !== null && !this.#closed) this.#onLine(last);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatch();
    await this.#pumping;
    await this.#file.close();
  }

  #unwatch(): void {
    this.#watcher?.close();
    this.#watcher = null;
  }

  async #pump(): Promise<void> {
    try {
      while (this.#again) {
        this.#again = false;
        for (;;) {
          if (this.#closed) return;
          const { bytesRead } = await this.#file.read(this.#buffer, 0, this.#buffer.length, this.#offset);
          if (bytesRead === 0) {
            if (this.#offset >= this.#truncateAbove) {
              await this.#file.truncate(0);
              this.#offset = 0;
            }
            break;
          }
          this.#offset += bytesRead;
          for (const line of this.#splitter.push(this.#buffer.subarray(0, bytesRead))) this.#onLine(line);
        }
      }
    } finally {
      // In the same step as the loop's last look at `#again`: a poke made a microtask later, which a
      // `.finally` on the promise would have let through unread, starts a pump of its own.
      this.#busy = false;
    }
  }
}
