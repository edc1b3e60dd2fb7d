import type { Command } from "commander";
import { type Context, printJson } from "../context.js";
import { formatTable } from "../table.js";
import { printNewToken } from "../tokens.js";
import { fields } from "../views.js";

/** `hangar orgs create|list|show`. */
export function registerOrgs(program: Command, ctx: Context): void {
  const orgs = program.command("orgs").description("manage organizations");

  orgs
    .command("create <slug>")
    .description("create an organization; prints its first admin token")
    .option("--name <name>", "a display name (default: the slug)")
    .option("--json", "print the API's JSON (it holds the token)")
    .action(async (slug: string, flags: { name?: string; json?: boolean }) => {
      const org = await (await ctx.api()).createOrg(slug, flags.name);
      if (flags.json) return printJson(ctx, org);
      printNewToken(
        ctx,
        org.token,
        `Organization ${org.slug} created. Its admin token (id ${org.token_id}) is above.`,
      );
    });

  orgs
    .command("list")
    .description("list the organizations the token covers")
    .option("--json", "print the API's JSON")
    .action(async (flags: { json?: boolean }) => {
      const list = await (await ctx.api()).listOrgs();
      if (flags.json) return printJson(ctx, list);
      if (list.length === 0)
        return ctx.out("No organizations: create one with `hangar orgs create <slug>`\n");
      ctx.out(
        formatTable(
          ["SLUG", "NAME", "CREATED"],
          list.map((o) => [o.slug, o.name, o.created_at]),
        ),
      );
    });

  orgs
    .command("show <slug>")
    .description("show an organization: its apps and rate limits")
    .option("--json", "print the API's JSON")
    .action(async (slug: string, flags: { json?: boolean }) => {
      const org = await (await ctx.api()).getOrg(slug);
      if (flags.json) return printJson(ctx, org);
      const limits = Object.entries(org.limits ?? {});
      ctx.out(
        `Organization ${org.slug}\n${fields([
          ["Name", org.name],
          ["Created", org.created_at],
          ["Apps", String(org.app_count)],
          [
            "Rate limits",
            limits.length === 0
              ? "the platform's defaults"
              : limits.map(([action, n]) => `${action} ${n}/min`).join(", "),
          ],
        ])}`,
      );
    });
}
