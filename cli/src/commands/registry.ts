import type { Command } from "commander";
import { CliError } from "../cli-error.js";
import { type Context, printJson } from "../context.js";

/** The org secret the builder and host agents pull with (Docker's config.json `auths` shape). */
export const REGISTRY_AUTH_SECRET = "HANGAR_REGISTRY_AUTH";

interface RegistryFlags {
  org?: string;
  username?: string;
  passwordStdin?: boolean;
  json?: boolean;
}

/** A registry host as refs name it: `docker.io`, `ghcr.io`, `localhost:5000`, `127.0.0.1:5000`. */
const HOST = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/i;

async function orgOf(ctx: Context, flags: RegistryFlags): Promise<string> {
  if (flags.org) return flags.org;
  const org = (await (await ctx.api()).whoami()).org;
  if (!org) throw new CliError("this token belongs to no org", "name one with -o <org>");
  return org;
}

async function readPassword(ctx: Context): Promise<string> {
  const input = ctx.stdin ?? process.stdin;
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  // As `docker login --password-stdin`: one trailing newline is the end of the line, not the password.
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

function checkHost(host: string): void {
  if (!HOST.test(host)) {
    throw new CliError(
      `${JSON.stringify(host)} is not a registry host`,
      "name it as image refs do, e.g. ghcr.io or localhost:5000",
    );
  }
}

/** The value of HANGAR_REGISTRY_AUTH for one registry, as Docker's config.json writes it. */
export function registryAuthValue(host: string, username: string, password: string): string {
  return JSON.stringify({
    auths: { [host]: { auth: Buffer.from(`${username}:${password}`).toString("base64") } },
  });
}

/**
 * `hangar registry login|logout`: the org's credentials for a private registry, kept as the org
 * secret HANGAR_REGISTRY_AUTH, with which the builder (FROM) and host agents (machine images) pull.
 */
export function registerRegistry(program: Command, ctx: Context): void {
  const registry = program
    .command("registry")
    .description("credentials for pulling images from private registries");

  registry
    .command("login <host>")
    .description("store the org's credentials for a registry (replaces any the org had for another registry)")
    .option("-u, --username <name>", "user name on the registry")
    .option("--password-stdin", "read the password (or token) from stdin")
    .option("-o, --org <slug>", "organization (default: the org of the token in use)")
    .option("--json", "print the outcome as JSON")
    .action(async (host: string, flags: RegistryFlags) => {
      checkHost(host);
      if (!flags.username)
        throw new CliError(
          "a user name is needed",
          `hangar registry login ${host} -u <user> --password-stdin`,
        );
      if (!flags.passwordStdin) {
        throw new CliError(
          "the password is read from stdin only, so it stays out of the shell history",
          `echo "$PASSWORD" | hangar registry login ${host} -u ${flags.username} --password-stdin`,
        );
      }
      const password = await readPassword(ctx);
      if (password === "")
        throw new CliError("the password on stdin is empty", "pipe the password or token in");
      const org = await orgOf(ctx, flags);
      const api = await ctx.api();
      await api.updateOrgSecrets(org, {
        [REGISTRY_AUTH_SECRET]: registryAuthValue(host, flags.username, password),
      });
      if (flags.json)
        return printJson(ctx, { org, host, username: flags.username, secret: REGISTRY_AUTH_SECRET });
      ctx.out(
        `Stored ${flags.username}'s credentials for ${host} in org ${org} (secret ${REGISTRY_AUTH_SECRET})\n`,
      );
    });

  registry
    .command("logout <host>")
    .description("remove the org's registry credentials")
    .option("-o, --org <slug>", "organization (default: the org of the token in use)")
    .option("--json", "print the outcome as JSON")
    .action(async (host: string, flags: RegistryFlags) => {
      checkHost(host);
      const org = await orgOf(ctx, flags);
      const api = await ctx.api();
      const listing = await api.listOrgSecrets(org);
      const had = listing.secrets.some((s) => s.name === REGISTRY_AUTH_SECRET);
      if (had) await api.updateOrgSecrets(org, { [REGISTRY_AUTH_SECRET]: null });
      if (flags.json) return printJson(ctx, { org, host, removed: had });
      ctx.out(
        had ? `Removed org ${org}'s registry credentials\n` : `Org ${org} had no registry credentials\n`,
      );
    });
}
