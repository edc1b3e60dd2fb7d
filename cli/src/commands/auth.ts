import type { Command } from "commander";
import type { Whoami } from "../auth-types.js";
import { requireApi } from "../config.js";
import { type Context, printJson } from "../context.js";
import { scopeOf } from "../tokens.js";
import { fields } from "../views.js";

/** What the token in use may do, in words. */
export function whoamiText(w: Whoami): string {
  const access = w.exec_only ? "exec into machines only" : w.read_only ? "read only" : "read and write";
  return `Token ${w.token_id}\n${fields([
    ["Kind", w.kind],
    ["Scope", w.kind === "operator" ? "every org (operator)" : scopeOf(w)],
    ["Access", access],
    ["Expires", w.expires_at ?? "never"],
  ])}`;
}

/** `hangar auth whoami|token`. */
export function registerAuth(program: Command, ctx: Context): void {
  const auth = program.command("auth").description("the API token in use");

  auth
    .command("whoami")
    .description("show what the token in use may do")
    .option("--json", "print the API's JSON")
    .action(async (flags: { json?: boolean }) => {
      const w = await (await ctx.api()).whoami();
      if (flags.json) return printJson(ctx, w);
      ctx.out(whoamiText(w));
    });

  auth
    .command("token")
    .description("print the token in use (from HANGAR_API_TOKEN, FLY_API_TOKEN or local.json)")
    .action(async () => {
      ctx.out(`${requireApi(await ctx.config()).token}\n`);
    });
}
