import { basename } from "node:path";
import { type AppConfig, AppConfigError, parseAppConfig } from "@hangar/config";
import type { Command } from "commander";
import { stringify } from "smol-toml";
import { findAppConfigFile, type LoadedAppConfig, loadAppConfig } from "../app-config.js";
import { CliError, ExitStatus } from "../cli-error.js";
import type { Context } from "../context.js";

/** What `hangar config validate` prints for a file that loads: "valid", then each warning. */
export function validateReport(loaded: LoadedAppConfig): string {
  const name = basename(loaded.file);
  if (loaded.warnings.length === 0) return `${name} is valid\n`;
  const count = loaded.warnings.length === 1 ? "1 warning" : `${loaded.warnings.length} warnings`;
  return `${name} is valid, with ${count}:\n${loaded.warnings.map((w) => `  ${w}\n`).join("")}`;
}

/** The parsed config as `hangar config show` prints it: TOML, or JSON with --json. */
export function showText(config: AppConfig, json: boolean): string {
  const text = JSON.stringify(config, null, 2);
  // Through JSON, so that TOML gets what the JSON shows (no undefined fields, which TOML cannot write).
  return json ? `${text}\n` : `${stringify(JSON.parse(text))}\n`;
}

async function load(ctx: Context, configPath: string | undefined): Promise<LoadedAppConfig> {
  const loaded = await loadAppConfig(ctx.cwd, configPath, ctx.cwd);
  if (loaded) return loaded;
  throw new CliError(
    "no hangar.toml or fly.toml found here",
    "pass -c <file>, or run it in the app's folder",
  );
}

/** `hangar config validate --json`: the verdict as JSON on stdout, and exit 1 when the file does not load. */
async function validateJson(ctx: Context, configPath: string | undefined): Promise<void> {
  const found = await findAppConfigFile(ctx.cwd, configPath, ctx.cwd).catch((err: unknown) => {
    if (err instanceof CliError) return { missing: err.message };
    throw err;
  });
  if (!found || "missing" in found) {
    const message = found?.missing ?? "no hangar.toml or fly.toml found here";
    ctx.out(
      `${JSON.stringify({ file: null, valid: false, kind: "missing", app: null, warnings: [], errors: [{ path: "", message }] }, null, 2)}\n`,
    );
    throw new ExitStatus(1);
  }
  const print = (verdict: Record<string, unknown>) =>
    ctx.out(`${JSON.stringify({ file: found.file, ...verdict }, null, 2)}\n`);
  try {
    const { config, warnings } = parseAppConfig(found.text, basename(found.file));
    print({ valid: true, app: config.app ?? null, warnings, errors: [] });
  } catch (err) {
    if (!(err instanceof AppConfigError)) throw err;
    print({
      valid: false,
      kind: err.code,
      app: err.found.app,
      warnings: err.found.warnings,
      errors: err.issues,
    });
    throw new ExitStatus(1);
  }
}

/** `hangar config validate` and `hangar config show`: the app config file as Hangar reads it. */
export function registerAppConfig(program: Command, ctx: Context): void {
  const config = program
    .command("config")
    .description("check and print the app config file (hangar.toml or fly.toml) as Hangar reads it");
  const fileOption = [
    "-c, --config <file>",
    "app config file (default: hangar.toml, else fly.toml, here)",
  ] as const;

  config
    .command("validate")
    .description("check the app config file: exit 0 if it loads (printing its warnings), 1 with its errors")
    .option(...fileOption)
    .option(
      "--json",
      "print {file, valid, app, warnings, errors} as JSON (errors: each with its line, path and message)",
    )
    .action(async (flags: { config?: string; json?: boolean }) => {
      if (flags.json) return validateJson(ctx, flags.config);
      ctx.out(validateReport(await load(ctx, flags.config)));
    });

  config
    .command("show")
    .description(
      "print the app config as Hangar reads it: older fly.toml shapes converted, durations as flyctl reads them",
    )
    .option(...fileOption)
    .option("--json", "print JSON")
    .action(async (flags: { config?: string; json?: boolean }) => {
      const loaded = await load(ctx, flags.config);
      for (const warning of loaded.warnings) ctx.err(`warning: ${warning}\n`);
      ctx.out(showText(loaded.config, flags.json === true));
    });
}
