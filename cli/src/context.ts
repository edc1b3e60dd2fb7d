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
}

/** Builds a context from an environment, a working folder and two writers. */
export function createContext(options: {
  env: NodeJS.ProcessEnv;
  cwd: string;
  out: (text: string) => void;
  err: (text: string) => void;
  errIsTTY?: boolean;
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
  });
}

/** Prints a value as the only thing on stdout, for `--json`. */
export function printJson(ctx: Context, value: unknown): void {
  ctx.out(`${JSON.stringify(value, null, 2)}\n`);
}
