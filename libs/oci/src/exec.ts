import { spawn } from "node:child_process";
import { SystemToolError } from "./errors.js";

/** Runs a program to completion and returns its stdout; a non-zero exit (unless allowed) is a SystemToolError. */
export function run(
  file: string,
  args: string[],
  opts: { cwd?: string; allowFailure?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.once("error", (error) =>
      reject(
        new SystemToolError(
          `could not run ${file}: ${error.message}` +
            ((error as NodeJS.ErrnoException).code === "ENOENT"
              ? ` (install the package that provides ${file})`
              : ""),
          { cause: error },
        ),
      ),
    );
    child.once("close", (code) => {
      const result = {
        code: code ?? -1,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      };
      if (result.code !== 0 && !opts.allowFailure) {
        reject(
          new SystemToolError(
            `${file} ${args.join(" ")} failed (exit ${result.code}): ${result.stderr.trim()}`,
          ),
        );
      } else resolve(result);
    });
  });
}
