import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { CliError } from "../cli-error.js";
import { type Context, printJson } from "../context.js";
import { formatTable } from "../table.js";

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

/** `hangar apps create|list|destroy`. */
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
