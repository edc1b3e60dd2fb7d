import { readFile } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { type AppConfig, AppConfigError, AppNameSchema, parseAppConfig } from "@hangar/config";
import type { Command } from "commander";
import { CliError } from "./cli-error.js";

/** The app config files `hangar deploy` looks for, in this order. */
export const APP_CONFIG_FILES = ["hangar.toml", "fly.toml"] as const;

/** An app config read from a file. */
export interface LoadedAppConfig {
  /** Absolute path of the file. */
  file: string;
  config: AppConfig;
  warnings: string[];
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/**
 * Reads `configPath` (relative to `cwd`), else hangar.toml or fly.toml in `dir`; undefined when there is
 * none and none was asked for. An invalid file throws a CliError listing each problem with its line.
 */
export async function loadAppConfig(
  dir: string,
  configPath?: string,
  cwd: string = dir,
): Promise<LoadedAppConfig | undefined> {
  const found = await findAppConfigFile(dir, configPath, cwd);
  if (found) {
    const { file, text } = found;
    try {
      return { file, ...parseAppConfig(text, basename(file)) };
    } catch (err) {
      if (!(err instanceof AppConfigError)) throw err;
      const what = err.code === "syntax" ? "is not valid TOML" : "has errors";
      throw new CliError(
        `${file} ${what}:\n${err.message}`,
        `fix ${basename(file)} and run the command again`,
      );
    }
  }
  return undefined;
}

/**
 * The app config file loadAppConfig reads, and its text: `configPath` (relative to `cwd`), else
 * hangar.toml or fly.toml in `dir`; undefined when there is none and none was asked for.
 */
export async function findAppConfigFile(
  dir: string,
  configPath?: string,
  cwd: string = dir,
): Promise<{ file: string; text: string } | undefined> {
  const candidates = configPath ? [resolve(cwd, configPath)] : APP_CONFIG_FILES.map((f) => resolve(dir, f));
  for (const file of candidates) {
    const text = await readIfExists(file);
    if (text !== undefined) return { file, text };
  }
  if (configPath) throw new CliError(`config file ${resolve(cwd, configPath)} does not exist`);
  return undefined;
}

/** The app to act on: -a, else the config file's `app`, else an error saying how to name one. */
export function resolveAppName(flag: string | undefined, loaded: LoadedAppConfig | undefined): string {
  if (flag) return flag;
  const app = loaded?.config.app;
  // The file loads with any `app`, as flyctl loads it (a template's "$APP_NAME"); naming the app with it
  // is where it must be a name.
  if (app && loaded && !AppNameSchema.safeParse(app).success) {
    throw new CliError(
      `${loaded.file}: app ${JSON.stringify(app)} is not an app name (lowercase letters, digits and dashes, at most 63)`,
      `pass -a <app>, or set \`app\` in ${basename(loaded.file)} to the app's name`,
    );
  }
  if (app) return app;
  throw new CliError(
    loaded ? `${loaded.file} does not name the app` : "no app given and no hangar.toml or fly.toml found",
    "pass -a <app>, or run `hangar launch` to write a hangar.toml",
  );
}

/** The help of an app-scoped command's `-a, --app`. */
export const APP_OPTION_HELP = "app (default: `app` in hangar.toml or fly.toml here)";

/**
 * A preAction hook for a command (and its subcommands) whose `-a, --app` defaults to the app of the
 * config file in `cwd`, as flyctl's commands do: the action always finds `app` set, or the run stops
 * with resolveAppName's error saying how to name one. Commands without an `app` option are left alone.
 */
export function appFromConfigHook(cwd: string): (thisCommand: Command, action: Command) => Promise<void> {
  return async (_thisCommand, action) => {
    if (!action.options.some((o) => o.attributeName() === "app")) return;
    if (action.getOptionValue("app") !== undefined) return;
    action.setOptionValue("app", resolveAppName(undefined, await loadAppConfig(cwd)));
  };
}
