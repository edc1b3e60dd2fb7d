import type { CreateTokenRequest, TokenInfo } from "./auth-types.js";
import { CliError } from "./cli-error.js";
import type { Context } from "./context.js";
import { formatTable } from "./table.js";

/** The kinds `hangar tokens create` makes (an operator token is made offline, with the platform's key). */
export const TOKEN_KINDS = ["org", "deploy", "readonly", "machine-exec"] as const;
export type CreatableKind = (typeof TOKEN_KINDS)[number];

/** The flags of `hangar tokens create`. */
export interface TokenFlags {
  org?: string;
  app?: string;
  expiry?: string;
  name?: string;
}

/**
 * The `POST /v1/tokens` body for `hangar tokens create <kind>`: deploy and machine-exec tokens are for
 * one app (`-a`), an org token is for a whole org (no `-a`); without `-o`, the org of the token in use.
 */
export function tokenRequest(kind: CreatableKind, flags: TokenFlags): CreateTokenRequest {
  if ((kind === "deploy" || kind === "machine-exec") && !flags.app)
    throw new CliError(`a ${kind} token is for one app`, `name it: hangar tokens create ${kind} -a <app>`);
  if (kind === "org" && flags.app)
    throw new CliError(
      "an org token covers every app of its org",
      "for one app, use: hangar tokens create deploy -a <app>",
    );
  return {
    kind,
    ...(flags.org ? { org: flags.org } : {}),
    ...(flags.app ? { app: flags.app } : {}),
    ...(flags.expiry ? { expiry: flags.expiry } : {}),
    ...(flags.name ? { name: flags.name } : {}),
  };
}

/**
 * Prints a token that was just made: the token alone on stdout (for `$(...)` and pipes), what it is
 * and a warning on stderr, since the API never shows it again.
 */
export function printNewToken(ctx: Context, token: string, about: string): void {
  ctx.out(`${token}\n`);
  ctx.err(`${about}\nStore it now (e.g. as HANGAR_API_TOKEN or FLY_API_TOKEN): it cannot be shown again.\n`);
}

/** What a token covers, in words: its org and its apps. */
export function scopeOf(t: { org: string | null; apps: string[] | null }): string {
  const org = t.org ?? "every org";
  return t.apps && t.apps.length > 0 ? `${org}: ${t.apps.join(", ")}` : org;
}

/** The table of `hangar tokens list`. */
export function tokensTable(tokens: TokenInfo[]): string {
  const rows = tokens.map((t) => [
    t.id,
    t.kind,
    t.name,
    scopeOf(t),
    t.expires_at ?? "never",
    t.created_at,
    t.revoked_at ? `revoked ${t.revoked_at}` : "",
  ]);
  return formatTable(["ID", "KIND", "NAME", "SCOPE", "EXPIRES", "CREATED", "STATUS"], rows);
}
