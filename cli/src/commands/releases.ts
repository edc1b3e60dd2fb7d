import type { Command } from "commander";
import { loadAppConfig, resolveAppName } from "../app-config.js";
import { type Context, printJson } from "../context.js";
import { ago, formatTable } from "../table.js";
import type { Release } from "../types.js";

/** The table of `hangar releases`, newest first as the API lists them. */
export function releasesTable(releases: Release[], now: number = Date.now()): string {
  const rows = releases.map((r) => [
    `v${r.version}`,
    r.status,
    r.image ?? "",
    r.build_id ?? "",
    ago(r.created_at, now),
    (r.status === "failed" ? r.reason : r.description) ?? "",
  ]);
  return formatTable(["VERSION", "STATUS", "IMAGE", "BUILD", "CREATED", "DESCRIPTION/REASON"], rows);
}

/** `hangar releases`: an app's releases. */
export function registerReleases(program: Command, ctx: Context): void {
  program
    .command("releases")
    .description("list an app's releases, newest first")
    .option("-a, --app <name>", "app (default: `app` in hangar.toml or fly.toml here)")
    .option("--json", "print the API's JSON")
    .action(async (flags: { app?: string; json?: boolean }) => {
      const app = resolveAppName(flags.app, flags.app ? undefined : await loadAppConfig(ctx.cwd));
      const releases = await (await ctx.api()).listReleases(app);
      if (flags.json) return printJson(ctx, releases);
      if (releases.length === 0)
        return ctx.out(`No releases of app ${app} yet: deploy with \`hangar deploy\`\n`);
      ctx.out(releasesTable(releases));
    });
}
