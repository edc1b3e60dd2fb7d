import { ApiClient } from "./api.js";
import { type HangarConfig, loadConfig, requireApi } from "./config.js";

/** What every command gets: where to write, and the platform's configuration, read on first use. */
export interface Context {
  /** Results: tables, JSON, URLs. */
  out(text: string): void;
  /** Errors, and progress when stdout must stay parseable. */
  err(text: string): void;
  config(): Promise<HangarConfig>;
  api(): Promise<ApiClient>;
  /** The folder relative paths are resolved from. */
  cwd: string;
  /** Whether `err` writes to a terminal, where progress can redraw one line. */
  errIsTTY: boolean;
  /** The user's input (`hangar ssh console`); none when the CLI runs without one (in-process). */
  stdin?: TerminalInput;
  /** The terminal's size, for a remote console's PTY. */
  terminalSize(): { cols: number; rows: number };
  /** Resolves on Ctrl-C (SIGINT) or SIGTERM, for commands that run until then (`hangar proxy`). */
  untilInterrupted(): Promise<void>;
}

/** Input that may be a terminal, which a console puts in raw mode. */
export type TerminalInput = NodeJS.ReadableStream & {
  isTTY?: boolean;
  setRawMode?(raw: boolean): unknown;
};

/** The size a terminal is taken to have when there is none. */
const DEFAULT_TERMINAL = { cols: 80, rows: 24 };

/** Builds a context from an environment, a working folder and two writers. */
export function createContext(options: {
  env: NodeJS.ProcessEnv;
  cwd: string;
  out: (text: string) => void;
  err: (text: string) => void;
  errIsTTY?: boolean;
  stdin?: TerminalInput;
  terminalSize?: () => { cols: number; rows: number };
}): Context {
  let config: Promise<HangarConfig> | undefined;
  const ctx: Context = {
    out: options.out,
    err: options.err,
    config: () => {
      config ??= loadConfig(options.env);
      return config;
    },
    api: async () => new ApiClient(requireApi(await ctx.config())),
    cwd: options.cwd,
    errIsTTY: options.errIsTTY ?? false,
    ...(options.stdin ? { stdin: options.stdin } : {}),
    terminalSize: options.terminalSize ?? (() => DEFAULT_TERMINAL),
    untilInterrupted: () =>
      new Promise((resolve) => {
        const done = () => {
          process.off("SIGINT", done);
          process.off("SIGTERM", done);
          resolve();
        };
        process.once("SIGINT", done);
        process.once("SIGTERM", done);
      }),
  };
  return ctx;
}

/** The context of a CLI run in this process: its environment, folder, stdout and stderr. */
export function processContext(): Context {
  return createContext({
    env: process.env,
    cwd: process.cwd(),
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    errIsTTY: process.stderr.isTTY === true,
    stdin: process.stdin,
    terminalSize: () => ({
      cols: process.stdout.columns || DEFAULT_TERMINAL.cols,
      rows: process.stdout.rows || DEFAULT_TERMINAL.rows,
    }),
  });
}

/** Prints a value as the only thing on stdout, for `--json`. */
export function printJson(ctx: Context, value: unknown): void {
  ctx.out(`${JSON.stringify(value, null, 2)}\n`);
}
