import type { Command } from "commander";
import { APP_OPTION_HELP, appFromConfigHook } from "../app-config.js";
import { appUrl } from "../config.js";
import { type Context, printJson } from "../context.js";
import { fields, machineTable, scalingSummary } from "../views.js";

/** `hangar status`: the app, its URL, its machines and the autoscaler's recent decisions. */
export function registerStatus(program: Command, ctx: Context): void {
  program
    .command("status")
    .description("show an app, its URL, its machines and why the autoscaler last scaled it")
    .option("-a, --app <name>", APP_OPTION_HELP)
    .option("--json", 'print {"app": ..., "machines": [...], "scaling": {...}} from the API')
    .hook("preAction", appFromConfigHook(ctx.cwd))
    .action(async (flags: { app: string; json?: boolean }) => {
      const api = await ctx.api();
      const [app, machines, scaling] = await Promise.all([
        api.getApp(flags.app),
        api.listMachines(flags.app),
        api.getScaling(flags.app),
      ]);
      if (flags.json) return printJson(ctx, { app, machines, scaling });
      ctx.out("App\n");
      ctx.out(
        fields([
          ["Name", app.name ?? flags.app],
          ["Organization", app.organization?.slug],
          ["Status", app.status],
          ["URL", appUrl(flags.app, (await ctx.config()).proxyUrl)],
        ]),
      );
      ctx.out("\nMachines\n");
      ctx.out(machines.length === 0 ? "  none\n" : machineTable(machines));
      ctx.out("\nAutoscaling\n");
      ctx.out(scalingSummary(scaling));
    });
}
