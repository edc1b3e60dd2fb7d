import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { CommandFailedError } from "./errors.js";

const execFileAsync = promisify(execFile);

/** Runs a program to completion and returns its stdout; a failure carries the program's stderr. */
export async function runCommand(file: string, args: readonly string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(file, args, { cwd, encoding: "utf8" });
    return stdout;
  } catch (cause) {
    const stderr = (cause as { stderr?: unknown }).stderr;
    throw new CommandFailedError([file, ...args], typeof stderr === "string" ? stderr : "", { cause });
  }
}
