import { type ChildProcessByStdio, spawn } from "node:child_process";
import { createRequire } from "node:module";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { createContext } from "../src/context.js";
import { runCli } from "../src/program.js";

const main = fileURLToPath(new URL("../src/main.ts", import.meta.url));
/** The CLI compiled by `tsc --build` and bundled by scripts/bundle.ts (the tests' global setup does both). */
const compiledMain = fileURLToPath(new URL("../bundle/main.mjs", import.meta.url));
// By path: the child may run in a folder outside the repository, where `--import tsx` would not resolve.
const tsx = createRequire(import.meta.url).resolve("tsx");

/** What a CLI run printed and how it exited. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
}

/** A CLI process that is still running: what it printed so far, and its end. */
export interface RunningCli {
  child: ChildProcessByStdio<null, Readable, Readable>;
  output(): CliResult;
  exited: Promise<CliResult>;
}

/**
 * The command line that runs the real CLI (for a wrapper such as `script`): from its sources, or
 * from cli/dist, bundled into cli/bundle, when HANGAR_RUN_FROM=dist (the tests' global setup has built it; see
 * scripts/platform.ts serviceArgv).
 */
export function hangarArgv(args: string[]): string[] {
  // `hangar edge dev|test` run edge apps in isolated-vm isolates: Node 20+ needs --no-node-snapshot.
  const flags = args[0] === "edge" ? ["--no-node-snapshot"] : [];
  if (process.env.HANGAR_RUN_FROM === "dist") return [process.execPath, ...flags, compiledMain, ...args];
  return [process.execPath, ...flags, "--conditions=source", "--import", tsx, main, ...args];
}

/** Starts the real CLI from its sources as a child process, with only the HANGAR_* variables given. */
export function startHangar(args: string[], options: RunOptions = {}): RunningCli {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith("HANGAR_")) delete env[key];
  const [file, ...argv] = hangarArgv(args);
  const child = spawn(file as string, argv, {
    cwd: options.cwd ?? process.cwd(),
    env: { ...env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const result: CliResult = { code: null, stdout: "", stderr: "" };
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    result.stdout += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    result.stderr += d;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 20_000);
  const exited = new Promise<CliResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      result.code = code;
      resolve(result);
    });
  });
  return { child, output: () => result, exited };
}

/** Runs the CLI to its end. */
export function runHangar(args: string[], options: RunOptions = {}): Promise<CliResult> {
  return startHangar(args, options).exited;
}

/** Runs the CLI in this process (its own context: HANGAR_HOME `home`, cwd `home`), and what it printed. */
export async function runCliIn(
  home: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const res = { code: 0, stdout: "", stderr: "" };
  const ctx = createContext({
    env: { HANGAR_HOME: home },
    cwd: home,
    out: (text) => {
      res.stdout += text;
    },
    err: (text) => {
      res.stderr += text;
    },
  });
  res.code = await runCli(args, ctx);
  return res;
}
