import type { AppConfig } from "@hangar/config";
import { type Command, InvalidArgumentError, Option } from "commander";
import { parse as parseDotenv } from "dotenv";
import type { ApiClient } from "../api.js";
import { loadAppConfig, resolveAppName } from "../app-config.js";
import { CliError } from "../cli-error.js";
import { type Context, printJson } from "../context.js";
import { ENDED, followRelease } from "../follow-release.js";
import { seconds } from "../options.js";
import { ago, formatTable } from "../table.js";
import type { Release, SecretsListing } from "../types.js";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DEFAULT_WAIT_MS = 60_000;

interface SecretsFlags {
  app?: string;
  stage?: boolean;
  detach?: boolean;
  waitTimeout?: number;
  json?: boolean;
}

/** `NAME=VALUE` arguments as secrets; a value may hold `=`, a name must be an environment variable name. */
export function parseAssignments(args: readonly string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const arg of args) {
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg : arg.slice(0, eq);
    if (eq < 0 || !NAME.test(name)) {
      throw new CliError(
        `${JSON.stringify(name)}: expected NAME=VALUE with NAME an environment variable name`,
        "quote a value with spaces: hangar secrets set 'GREETING=hello world'",
      );
    }
    values[name] = arg.slice(eq + 1);
  }
  return values;
}

/** Secrets from dotenv text (`NAME=VALUE` lines, comments, quotes, multi-line quoted values). */
export function parseImport(text: string): Record<string, string> {
  const values = parseDotenv(text);
  for (const name of Object.keys(values)) {
    if (!NAME.test(name)) throw new CliError(`${JSON.stringify(name)} is not an environment variable name`);
  }
  return values;
}

/** The table of `hangar secrets list`. */
export function secretsTable(listing: SecretsListing, now: number = Date.now()): string {
  const status = { deployed: "Deployed", staged: "Staged", unset_staged: "Staged for removal" } as const;
  const rows = listing.secrets.map((s) => [
    s.name,
    s.digest ?? "-",
    status[s.status],
    ago(s.updated_at, now),
  ]);
  return formatTable(["NAME", "DIGEST", "STATUS", "UPDATED"], rows);
}

async function appOf(ctx: Context, flags: SecretsFlags): Promise<string> {
  return resolveAppName(flags.app, flags.app ? undefined : await loadAppConfig(ctx.cwd));
}

async function readStdin(ctx: Context): Promise<string> {
  const input = ctx.stdin ?? process.stdin;
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString("utf8");
}

/** A release the platform is still carrying out (a deploy, a rollback, another roll). */
function inProgress(releases: readonly Release[]): Release | undefined {
  return releases.find((r) => r.deploy === true && !ENDED.has(r.status));
}

/** The refusal of a detached roll while release `open` is in progress (it would supersede it). */
function busy(app: string, open: Release, then: string): CliError {
  return new CliError(
    `release v${open.version} of app ${app} is ${open.status}: a roll now would take its place and bring the previous image back`,
    `${then} once it has ended (\`hangar releases -a ${app}\`), or run this without --detach to wait for it`,
  );
}

/**
 * Rolls the app's machines onto its secrets as they are now, as flyctl's restart-only deploy does: a
 * release of the current image and config without its release_command or seed_command, that the
 * platform carries out (rolling, `[deploy] max_unavailable` at a time, else one machine at a time,
 * each new machine healthy before a previous one goes; machines on volumes updated in place),
 * followed here to its end unless `detach`. A release in progress (a deploy) is waited for first:
 * a roll recorded now would supersede it and bring the old image back. Machines get secrets only
 * when they start. A client that stops half-way leaves a roll the platform finishes or rolls back.
 */
export async function rollSecrets(
  api: ApiClient,
  app: string,
  opts: { waitTimeoutMs: number; progress: (text: string) => void; reason: string; detach?: boolean },
): Promise<{ release: number; machines: string[]; detached?: boolean } | undefined> {
  let releases = await api.listReleases(app);
  const open = inProgress(releases);
  if (open && opts.detach)
    throw busy(app, open, "the secrets are recorded: `hangar secrets deploy` rolls them");
  if (open) {
    opts.progress(
      `Waiting for release v${open.version} (${open.status}) to end before rolling the machines\n`,
    );
    await followRelease(api, app, open.version, () => undefined);
    releases = await api.listReleases(app);
  }
  const current = releases.find((r) => r.status === "succeeded");
  if (current?.edge) {
    // An edge app has no machines: each proxy deploys its code again with the new `env` by itself.
    opts.progress(`The proxies run edge app ${app}'s code with the new secrets within seconds\n`);
    return undefined;
  }
  if (!current?.image) {
    opts.progress(
      `No release of app ${app} to roll: machines get the new secrets when they next start (hangar machine restart)\n`,
    );
    return undefined;
  }
  // The app as it runs, without what only a deploy runs (a migration is not a restart's to run again).
  const {
    release_command: _release,
    seed_command: _seed,
    ...deploy
  } = ((current.config ?? {}) as AppConfig).deploy ?? {};
  const config = { ...(current.config ?? {}), deploy } as AppConfig;
  const release = await api.createRelease(app, {
    image: current.image,
    ...(current.build_id ? { build_id: current.build_id } : {}),
    config,
    strategy: "rolling",
    deploy: true,
    max_unavailable: String(deploy.max_unavailable ?? 1),
    wait_timeout: opts.waitTimeoutMs / 1000,
    description: opts.reason,
  });
  opts.progress(
    `Release v${release.version} (${opts.reason}) created: the platform rolls the machines onto it\n`,
  );
  if (opts.detach) {
    opts.progress(`Follow it with \`hangar releases -a ${app}\`\n`);
    return { release: release.version, machines: [], detached: true };
  }
  const ended = await followRelease(api, app, release.version, opts.progress);
  // A deploy recorded meanwhile took the app over: its machines start with the new secrets.
  const superseded = /^superseded by v(\d+)/.exec(ended.reason ?? "");
  if (ended.status === "failed" && superseded) {
    opts.progress(
      `Release v${ended.version} was superseded by v${superseded[1]}, whose machines start with the new secrets\n`,
    );
    return { release: ended.version, machines: [] };
  }
  if (ended.status === "failed") {
    const back = ended.rolled_back_to
      ? `the platform returned the app to v${ended.rolled_back_to}`
      : `v${current.version} keeps serving`;
    throw new CliError(
      `release v${ended.version} failed: ${ended.reason ?? "unknown"}; ${back} (machines it started again have the new secrets)`,
      `see what the app printed with \`hangar logs -a ${app}\``,
    );
  }
  return { release: ended.version, machines: ended.machine_ids ?? [] };
}

/** Applies an update and, unless staged, rolls the machines onto it (left to the platform when detached). */
async function apply(
  ctx: Context,
  flags: SecretsFlags,
  values: Record<string, string | null>,
  what: string,
): Promise<void> {
  const app = await appOf(ctx, flags);
  const api = await ctx.api();
  const stage = flags.stage ?? false;
  if (flags.detach && !stage) {
    const open = inProgress(await api.listReleases(app));
    if (open) throw busy(app, open, "set them again, or run `hangar secrets deploy`,");
  }
  const listing = await api.updateSecrets(app, values, stage);
  const progress = flags.json ? ctx.err : ctx.out;
  const names = Object.keys(values);
  const subject = names.length > 0 ? `${what} ${names.join(", ")}` : "Deployed the staged secrets";
  if (stage) {
    progress(`${subject} (staged: \`hangar secrets deploy\` or the next \`hangar deploy\` applies them)\n`);
    if (flags.json) printJson(ctx, { app, staged: true, ...listing });
    return;
  }
  progress(`${subject} of app ${app} (version ${listing.version})\n`);
  const rolled = await rollSecrets(api, app, {
    waitTimeoutMs: flags.waitTimeout !== undefined ? flags.waitTimeout * 1000 : DEFAULT_WAIT_MS,
    progress,
    reason: names.length > 0 ? `secrets: ${what.toLowerCase()} ${names.join(", ")}` : "secrets deploy",
    ...(flags.detach ? { detach: true } : {}),
  });
  if (rolled && !rolled.detached)
    progress(`Release v${rolled.release} is live on ${rolled.machines.length} machine(s)\n`);
  if (flags.json) printJson(ctx, { app, staged: false, rolled: rolled ?? null, ...listing });
}

function withCommon(cmd: Command, stage: boolean): Command {
  cmd
    .option("-a, --app <name>", "app (default: `app` in hangar.toml or fly.toml here)")
    .option("--json", "print the outcome as one JSON object");
  if (stage) {
    cmd
      .option("--stage", "record the change without rolling the machines: the next deploy applies it")
      .option("--detach", "apply at once and leave the roll to the platform, without waiting for it");
  }
  return cmd.addOption(
    new Option(
      "--wait-timeout <duration>",
      "how long new machines have to start and pass their checks (60s)",
    ).argParser(seconds),
  );
}

/** `hangar secrets set|unset|list|import|deploy`, as flyctl's. */
export function registerSecrets(program: Command, ctx: Context): void {
  const secrets = program
    .command("secrets")
    .description("app secrets: encrypted, write-only, given to machines as environment variables");

  withCommon(secrets.command("set <NAME=VALUE...>"), true)
    .description(
      "set secrets and roll the app's machines onto them: a rolling release the platform carries out",
    )
    .action((pairs: string[], flags: SecretsFlags) => apply(ctx, flags, parseAssignments(pairs), "Set"));

  withCommon(secrets.command("unset <NAME...>"), true)
    .description("remove secrets and roll the app's machines")
    .action((names: string[], flags: SecretsFlags) => {
      for (const name of names) {
        if (!NAME.test(name)) throw new InvalidArgumentError(`${JSON.stringify(name)} is not a secret name`);
      }
      return apply(ctx, flags, Object.fromEntries(names.map((n) => [n, null])), "Unset");
    });

  withCommon(secrets.command("import"), true)
    .description("set secrets from NAME=VALUE lines on stdin (dotenv format)")
    .action(async (flags: SecretsFlags) => {
      const values = parseImport(await readStdin(ctx));
      if (Object.keys(values).length === 0) throw new CliError("no NAME=VALUE lines on stdin");
      return apply(ctx, flags, values, "Set");
    });

  withCommon(secrets.command("deploy"), false)
    .description("apply the staged secrets and roll the app's machines onto them")
    .action((flags: SecretsFlags) => apply(ctx, flags, {}, "Deployed"));

  secrets
    .command("list")
    .description("list the app's secrets: names, digests and times, never values")
    .option("-a, --app <name>", "app (default: `app` in hangar.toml or fly.toml here)")
    .option("--json", "print the API's JSON")
    .action(async (flags: SecretsFlags) => {
      const app = await appOf(ctx, flags);
      const listing = await (await ctx.api()).listSecrets(app);
      if (flags.json) return printJson(ctx, listing);
      if (listing.secrets.length === 0)
        return ctx.out(`App ${app} has no secrets: set one with \`hangar secrets set NAME=VALUE\`\n`);
      ctx.out(secretsTable(listing));
    });
}
