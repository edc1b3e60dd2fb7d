import { open } from "node:fs/promises";

const TAIL_BYTES = 4096;

/** Returns the last lines of a log file for error messages, or a note when it cannot be read. */
export async function logTail(path: string, lines = 20): Promise<string> {
  try {
    const file = await open(path, "r");
    try {
      const { size } = await file.stat();
      const length = Math.min(size, TAIL_BYTES);
      const { buffer } = await file.read(Buffer.alloc(length), 0, length, size - length);
      return buffer.toString("utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } finally {
      await file.close();
    }
  } catch (error) {
    return `(no log at ${path}: ${(error as Error).message})`;
  }
}
