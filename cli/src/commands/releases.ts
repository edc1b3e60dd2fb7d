import { type Command, InvalidArgumentError } from "commander";
import { loadAppConfig, resolveAppName } from "../app-config.js";
import { CliError } from "../cli-error.js";
import { type Context, printJson } from "../context.js";
import { followRelease } from "../follow-release.js";
import { ago, formatTable } from "../table.js";
import type { Release } from "../types.js";

/** The table of `hangar releases`, newest first as the API lists them. */
export function releasesTable(releases: Release[], now: number = Date.now()): string {
  const rows = releases.map((r) => [
    `v${r.version}`,
    r.status,
    r.image || (r.edge ? edgeBundleShort(r.edge.bundle) : ""),
    r.build_id ?? "",
    ago(r.created_at, now),
    r.strategy ?? "",
    r.deployed_by ?? "",
    describeRelease(r),
  ]);
  return formatTable(
    ["VERSION", "STATUS", "IMAGE", "BUILD", "CREATED", "STRATEGY", "BY", "DESCRIPTION/REASON"],
    rows,
  );
}

/** An edge release's bundle in the IMAGE column: `edge sha256:<12 hex>`. */
export function edgeBundleShort(digest: string): string {
  return `edge ${digest.slice(0, "sha256:".length + 12)}`;
}

/** What happened to a release, in words: why it failed and where the app went back to, or its description. */
export function describeRelease(r: Release): string {
  const parts: string[] = [];
  if (r.status === "failed") {
    parts.push(r.reason ?? "");
    if (r.rolled_back_to) parts.push(`rolled back to v${r.rolled_back_to}`);
  } else if (r.description) parts.push(r.description);
  if (r.rollback_of) parts.push(`redeploys v${r.rollback_of}`);
  // A launch's first deploy: its seed_command, and how it ended.
  const seed = r.seed_command;
  if (seed)
    parts.push(
      seed.error
        ? `seed_command ${seed.error}`
        : seed.exit_code === null
          ? "seed_command running"
          : `seed_command exited ${seed.exit_code}`,
    );
  return parts.filter((p) => p !== "").join("; ");
}

/**
 * The release `releases rollback` goes back to: `version` when given, else the newest that succeeded
 * before the one the app serves now.
 */
export function rollbackTarget(releases: Release[], version: number | undefined): Release {
  if (version !== undefined) {
    const r = releases.find((x) => x.version === version);
    if (!r) throw new CliError(`release v${version} not found`, "list the releases with `hangar releases`");
    if (r.status !== "succeeded")
      throw new CliError(
        `release v${version} ${r.status === "failed" ? "failed" : "has not ended"}: only a release that served can be rolled back to`,
      );
    return r;
  }
  const served = releases.filter((r) => r.status === "succeeded").sort((a, b) => b.version - a.version);
  const target = served[1];
  if (!target)
    throw new CliError(
      served.length === 0
        ? "no release of this app has served yet"
        : "the app has served only one release: there is nothing to roll back to",
    );
  return target;
}

function versionArg(value: string): number {
  const v = Number(value.replace(/^v/, ""));
  if (!Number.isInteger(v) || v < 1)
    throw new InvalidArgumentError("expected a release version such as 3 or v3");
  return v;
}

/** `hangar releases`: an app's releases. */
export function registerReleases(program: Command, ctx: Context): void {
  const releases = program
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

  releases
    .command("rollback [version]")
    .description("redeploy an earlier release (its image and config): by default the one before the current")
    .option("-a, --app <name>", "app (default: `app` in hangar.toml or fly.toml here)")
    .option("--strategy <name>", "rolling (default), immediate, canary or bluegreen")
    .option("--detach", "return once the release is recorded; the platform carries it out")
    .option("--json", "print the outcome as one JSON object")
    .action(async (version: string | undefined, _flags: unknown, cmd: Command) => {
      // `releases` has -a too: commander gives it to the parent when it follows the subcommand.
      const flags = cmd.optsWithGlobals<{
        app?: string;
        strategy?: string;
        detach?: boolean;
        json?: boolean;
      }>();
      const app = resolveAppName(flags.app, flags.app ? undefined : await loadAppConfig(ctx.cwd));
      const api = await ctx.api();
      const target = rollbackTarget(
        await api.listReleases(app),
        version === undefined ? undefined : versionArg(version),
      );
      const progress = flags.json ? ctx.err : ctx.out;
      // An edge release's bundle and limits come back with it (the gateway takes them from the release).
      const edge = target.edge ?? undefined;
      const created = await api.createRelease(app, {
        rollback_of: target.version,
        deploy: true,
        strategy: flags.strategy ?? (edge ? "immediate" : "rolling"),
        description: `rollback to v${target.version}`,
      });
      const what = edge ? `its edge bundle ${edge.bundle}` : target.image || "its image";
      progress(`Release v${created.version} redeploys v${target.version} (${what})\n`);
      if (flags.detach) return flags.json ? printJson(ctx, created) : undefined;
      const ended = await followRelease(api, app, created.version, progress);
      if (flags.json) printJson(ctx, ended);
      if (ended.status === "failed")
        throw new CliError(
          `release v${ended.version} failed: ${ended.reason ?? "unknown"}${ended.rolled_back_to ? `; v${ended.rolled_back_to} keeps serving (the platform returned the app to it)` : ""}`,
        );
      if (flags.json) return;
      if (edge)
        ctx.out(
          `Release v${ended.version} (v${target.version}'s edge bundle and config) is live on the edge\n`,
        );
      else
        ctx.out(
          `Release v${ended.version} (v${target.version}'s image and config) is live on ${ended.machine_ids?.length ?? 0} machines\n`,
        );
    });
}
