import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { APP_OPTION_HELP, loadAppConfig, resolveAppName } from "../app-config.js";
import { CliError } from "../cli-error.js";
import { type Context, printJson } from "../context.js";
import { withHint } from "../errors.js";
import { waitTimeoutOption } from "../options.js";
import { formatTable } from "../table.js";
import { restartAndWait } from "../wait.js";

async function confirmDestroy(app: string): Promise<boolean> {
  if (!process.stdin.isTTY) {
    throw new CliError(`refusing to destroy app ${app} without confirmation`, "pass --yes to confirm");
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(
      `Destroy app ${app} and all its machines? Type the app name to confirm: `,
    );
    return answer.trim() === app;
  } finally {
    rl.close();
  }
}

interface RestartFlags {
  app?: string;
  waitTimeout: number;
  json?: boolean;
}

/**
 * `hangar apps restart`: restarts each started machine of the app, one at a time, each started again
 * before the next (flyctl's rolling restart); machines that are not running are left as they are.
 */
async function restartApp(ctx: Context, positional: string | undefined, flags: RestartFlags): Promise<void> {
  const app = positional ?? flags.app ?? resolveAppName(undefined, await loadAppConfig(ctx.cwd));
  const api = await ctx.api();
  const progress = flags.json ? ctx.err : ctx.out;
  const machines = (await api.listMachines(app)).filter(
    (m) => m.state !== "destroyed" && m.state !== "destroying",
  );
  const restarted: string[] = [];
  const skipped: string[] = [];
  for (const m of machines) {
    if (m.state !== "started") {
      progress(`Machine ${m.id} is ${m.state ?? "in an unknown state"}: not restarted\n`);
      skipped.push(m.id);
      continue;
    }
    progress(`Restarting machine ${m.id}... `);
    try {
      await restartAndWait(api, app, m.id, flags.waitTimeout);
    } catch (err) {
      progress("failed\n");
      throw withHint(err, `see what it printed with \`hangar logs -a ${app} --machine ${m.id}\``);
    }
    progress("started\n");
    restarted.push(m.id);
  }
  if (flags.json) return printJson(ctx, { app, restarted, skipped });
  if (machines.length === 0) ctx.out(`No machines in app ${app}\n`);
  else ctx.out(`Restarted ${restarted.length} of ${machines.length} machines of app ${app}\n`);
}

/** `hangar apps create|list|restart|destroy`. */
export function registerApps(program: Command, ctx: Context): void {
  const apps = program.command("apps").description("manage apps");

  apps
    .command("create <name>")
    .description("create an app")
    .option("-o, --org <slug>", "organization (default: the token's)")
    .action(async (name: string, opts: { org?: string }) => {
      const api = await ctx.api();
      const app = await api.createApp(name, opts.org);
      ctx.out(`App ${name} created in organization ${app?.organization?.slug ?? opts.org}\n`);
    });

  apps
    .command("list")
    .description("list the apps of an organization")
    .option("-o, --org <slug>", "organization (default: the token's)")
    .option("--json", "print the API's JSON")
    .action(async (opts: { org?: string; json?: boolean }) => {
      const api = await ctx.api();
      const res = await api.listApps(opts.org);
      if (opts.json) return printJson(ctx, res);
      const list = res.apps ?? [];
      if (list.length === 0) return ctx.out(opts.org ? `No apps in organization ${opts.org}\n` : "No apps\n");
      const rows = list.map((a) => [a.name ?? "", String(a.machine_count ?? 0)]);
      ctx.out(formatTable(["NAME", "MACHINES"], rows));
    });

  apps
    .command("restart [app]")
    .description("restart every running machine of an app, one at a time")
    .option("-a, --app <name>", APP_OPTION_HELP)
    .addOption(waitTimeoutOption(60, "1m", "each machine to be started again"))
    .option("--json", "print the machines restarted as JSON")
    .action((app: string | undefined, flags: RestartFlags) => restartApp(ctx, app, flags));

  apps
    .command("destroy <name>")
    .description("destroy an app and its machines")
    .option("-y, --yes", "do not ask for confirmation")
    .action(async (name: string, opts: { yes?: boolean }) => {
      const api = await ctx.api();
      if (!opts.yes && !(await confirmDestroy(name))) throw new CliError(`app ${name} was not destroyed`);
      await api.destroyApp(name);
      ctx.out(`App ${name} destroyed\n`);
    });
}
