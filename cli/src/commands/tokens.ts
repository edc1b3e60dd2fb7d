import { Argument, type Command, InvalidArgumentError } from "commander";
import { type Context, printJson } from "../context.js";
import { goDuration } from "../options.js";
import {
  type CreatableKind,
  printNewToken,
  scopeOf,
  TOKEN_KINDS,
  tokenRequest,
  tokensTable,
} from "../tokens.js";

/** An expiry as the API takes it: a Go duration ("720h"); a plain number is seconds. */
function expiry(value: string): string {
  try {
    return goDuration(value);
  } catch {
    throw new InvalidArgumentError('expected a duration such as "720h" or "30m"');
  }
}

/** `hangar tokens create|list|revoke`: the org's API tokens (macaroons). */
export function registerTokens(program: Command, ctx: Context): void {
  const tokens = program.command("tokens").description("manage API tokens");

  tokens
    .command("create")
    .description("create a token: org (the whole org), deploy -a <app>, readonly, or machine-exec -a <app>")
    .addArgument(new Argument("<kind>", "what the token may do").choices(TOKEN_KINDS))
    .option("-o, --org <slug>", "organization (default: the org of the token in use)")
    .option("-a, --app <name>", "the app a deploy, machine-exec or readonly token is limited to")
    .option(
      "--expiry <duration>",
      'how long the token is valid, e.g. "720h" (default: the platform\'s)',
      expiry,
    )
    .option("--name <name>", "a name to recognise the token by in `hangar tokens list`")
    .option("--json", "print the API's JSON (it holds the token)")
    .action(
      async (
        kind: CreatableKind,
        flags: { org?: string; app?: string; expiry?: string; name?: string; json?: boolean },
      ) => {
        const body = tokenRequest(kind, flags);
        const created = await (await ctx.api()).createToken(body);
        if (flags.json) return printJson(ctx, created);
        const expires = created.expires_at ? `, expires ${created.expires_at}` : "";
        printNewToken(
          ctx,
          created.token,
          `Token ${created.id}: ${created.kind} for ${scopeOf(created)}${expires}.`,
        );
      },
    );

  tokens
    .command("list")
    .description("list an org's tokens (never the tokens themselves)")
    .option("-o, --org <slug>", "organization (default: the org of the token in use)")
    .option("--json", "print the API's JSON")
    .action(async (flags: { org?: string; json?: boolean }) => {
      const list = await (await ctx.api()).listTokens(flags.org);
      if (flags.json) return printJson(ctx, list);
      if (list.length === 0) return ctx.out("No tokens: create one with `hangar tokens create`\n");
      ctx.out(tokensTable(list));
    });

  tokens
    .command("revoke <id>")
    .description("revoke a token by its id: every copy and attenuation of it stops working")
    .option("--json", "print the result as JSON")
    .action(async (id: string, flags: { json?: boolean }) => {
      await (await ctx.api()).revokeToken(id);
      if (flags.json) return printJson(ctx, { id, revoked: true });
      ctx.out(`Token ${id} revoked\n`);
    });
}
