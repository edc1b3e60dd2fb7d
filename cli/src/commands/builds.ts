import type { Command } from "commander";
import { loadAppConfig, resolveAppName } from "../app-config.js";
import { type Context, printJson } from "../context.js";
import { ago, formatTable } from "../table.js";
import type { Build } from "../types.js";

/** The table of `hangar builds list`, newest first as the API lists them. */
export function buildsTable(builds: Build[], now: number = Date.now()): string {
  const rows = builds.map((b) => [
    b.id,
    b.status,
    b.created_at ? ago(b.created_at, now) : "",
    b.duration_ms != null ? `${(b.duration_ms / 1000).toFixed(1)}s` : "",
    b.status === "failed" ? (b.error?.message ?? "") : (b.image_ref ?? ""),
  ]);
  return formatTable(["ID", "STATUS", "CREATED", "DURATION", "IMAGE/ERROR"], rows);
}

/** `hangar builds list` and `hangar builds cancel <id>`: an app's builds. */
export function registerBuilds(program: Command, ctx: Context): void {
  const builds = program.command("builds").description("list and cancel an app's builds");
  const appOf = async (flag: string | undefined) =>
    resolveAppName(flag, flag ? undefined : await loadAppConfig(ctx.cwd));
  builds
    .command("list")
    .description("list an app's builds, newest first")
    .option("-a, --app <name>", "app (default: `app` in hangar.toml or fly.toml here)")
    .option("--json", "print the API's JSON")
    .action(async (flags: { app?: string; json?: boolean }) => {
      const app = await appOf(flags.app);
      const list = await (await ctx.api()).listBuilds(app);
      if (flags.json) return printJson(ctx, list);
      if (list.length === 0) return ctx.out(`No builds of app ${app} yet: build with \`hangar deploy\`\n`);
      ctx.out(buildsTable(list));
    });
  builds
    .command("cancel <id>")
    .description(
      "cancel a build that is waiting or running: its RUN steps are killed and it fails as cancelled",
    )
    .option("-a, --app <name>", "app (default: `app` in hangar.toml or fly.toml here)")
    .option("--json", "print the API's JSON")
    .action(async (id: string, flags: { app?: string; json?: boolean }) => {
      const app = await appOf(flags.app);
      const build = await (await ctx.api()).cancelBuild(app, id);
      if (flags.json) return printJson(ctx, build);
      ctx.out(`Build ${build.id} of app ${app} cancelled\n`);
    });
}
