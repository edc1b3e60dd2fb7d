import { spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { SystemToolError } from "./errors.js";

export interface RunOptions {
  cwd?: string;
  /** A non-zero exit resolves (with its code) instead of rejecting. */
  allowFailure?: boolean;
  /** Kills the program (SIGKILL) after this long; it then resolves with `timedOut`, never rejects. */
  timeoutMs?: number;
  /** The program's stdin; without it, stdin is closed. */
  input?: Readable;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Whether it was killed after `timeoutMs`. */
  timedOut: boolean;
}

/**
 * Runs a program to completion and returns its stdout; a non-zero exit (unless allowed) is a
 * SystemToolError, as is a program that cannot be started.
 */
export function run(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const { input } = opts;
    const child = input
      ? spawn(file, args, { cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] })
      : spawn(file, args, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    if (input && child.stdin) {
      const stdin = child.stdin;
      input.on("error", (e) => stdin.destroy(e));
      // A program that exits early (bad input) closes its stdin: the rest of the input is dropped.
      stdin.on("error", () => {});
      input.pipe(stdin);
    }
    let timedOut = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, opts.timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(
        new SystemToolError(
          `could not run ${file}: ${error.message}` +
            ((error as NodeJS.ErrnoException).code === "ENOENT"
              ? ` (install the package that provides ${file})`
              : ""),
          { cause: error },
        ),
      );
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      const result = {
        code: code ?? -1,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        timedOut,
      };
      if (result.code !== 0 && !opts.allowFailure && !timedOut) {
        reject(
          new SystemToolError(
            `${file} ${args.join(" ")} failed (exit ${result.code}): ${result.stderr.trim()}`,
          ),
        );
      } else resolve(result);
    });
  });
}
