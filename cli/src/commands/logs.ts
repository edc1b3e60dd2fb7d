import type { Command } from "commander";
import { loadAppConfig, resolveAppName } from "../app-config.js";
import type { Context } from "../context.js";
import { readUntilInterrupted } from "../interrupt.js";
import { formatLogEntry } from "../logs.js";

interface LogsFlags {
  app?: string;
  machine?: string;
  region?: string;
  /** False with --no-tail. */
  tail: boolean;
  json?: boolean;
}

async function printLogs(ctx: Context, flags: LogsFlags): Promise<void> {
  const app = resolveAppName(flags.app, flags.app ? undefined : await loadAppConfig(ctx.cwd));
  const api = await ctx.api();
  await readUntilInterrupted(async (signal) => {
    const entries = api.appLogs(app, {
      machine: flags.machine,
      region: flags.region,
      follow: flags.tail,
      signal,
    });
    for await (const entry of entries) {
      ctx.out(`${flags.json ? JSON.stringify(entry) : formatLogEntry(entry)}\n`);
    }
  });
}

/** `hangar logs`: an app's recent output through the API, then new lines as they are printed, until Ctrl-C. */
export function registerLogs(program: Command, ctx: Context): void {
  program
    .command("logs")
    .description("print an app's recent output, then follow new lines until Ctrl-C")
    .option("-a, --app <name>", "app (default: `app` in hangar.toml or fly.toml here)")
    .option("-m, --machine <id>", "only this machine")
    .option("-r, --region <region>", "only machines in this region")
    .option("-n, --no-tail", "print the recent lines and exit, without following")
    .option("--json", "print each entry as the API's JSON, one per line")
    .action((flags: LogsFlags) => printLogs(ctx, flags));
}
