import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { ExitStatus } from "./cli-error.js";
import { registerAppConfig } from "./commands/app-config-commands.js";
import { registerApps } from "./commands/apps.js";
import { registerAudit } from "./commands/audit.js";
import { registerAuth } from "./commands/auth.js";
import { registerBuilds } from "./commands/builds.js";
import { registerDeploy } from "./commands/deploy.js";
import { registerEdge } from "./commands/edge.js";
import { registerEvents } from "./commands/events.js";
import { registerLaunch } from "./commands/launch.js";
import { registerLogs } from "./commands/logs.js";
import { registerMachine } from "./commands/machine.js";
import { registerOrgs } from "./commands/orgs.js";
import { registerPostgres } from "./commands/postgres.js";
import { registerProxy } from "./commands/proxy.js";
import { registerRegistry } from "./commands/registry.js";
import { registerReleases } from "./commands/releases.js";
import { registerScale } from "./commands/scale.js";
import { registerSecrets } from "./commands/secrets.js";
import { registerSsh } from "./commands/ssh.js";
import { registerStatus } from "./commands/status.js";
import { registerTokens } from "./commands/tokens.js";
import { registerVolumes } from "./commands/volumes.js";
import { registerWebhooks } from "./commands/webhooks.js";
import { type Context, processContext } from "./context.js";
import { describeError } from "./errors.js";

/** Exit status of a usage error (unknown command or option, missing or bad argument). */
export const USAGE_EXIT_CODE = 2;

function version(): string {
  // src/ and dist/ both sit next to package.json.
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

/** The `hangar` command tree, bound to a context. */
export function buildProgram(ctx: Context): Command {
  const program = new Command("hangar")
    .description("Command-line client of Hangar's Machines API")
    .version(version())
    // Set before the subcommands are added, so that they inherit them.
    .exitOverride()
    .configureOutput({ writeOut: ctx.out, writeErr: ctx.err })
    .showHelpAfterError("(add --help for usage)");
  registerApps(program, ctx);
  registerMachine(program, ctx);
  registerStatus(program, ctx);
  registerScale(program, ctx);
  registerLogs(program, ctx);
  registerEvents(program, ctx);
  registerLaunch(program, ctx);
  registerAppConfig(program, ctx);
  registerDeploy(program, ctx);
  registerEdge(program, ctx);
  registerBuilds(program, ctx);
  registerReleases(program, ctx);
  registerSecrets(program, ctx);
  registerVolumes(program, ctx);
  registerPostgres(program, ctx);
  registerRegistry(program, ctx);
  registerProxy(program, ctx);
  registerSsh(program, ctx);
  registerOrgs(program, ctx);
  registerTokens(program, ctx);
  registerAuth(program, ctx);
  registerAudit(program, ctx);
  registerWebhooks(program, ctx);
  return program;
}

/** Runs the CLI on `argv` (without node and script); resolves to the exit status. */
export async function runCli(argv: string[], ctx: Context = processContext()): Promise<number> {
  try {
    await buildProgram(ctx).parseAsync(argv, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed the message already.
      const ok = err.code === "commander.helpDisplayed" || err.code === "commander.version";
      return ok ? 0 : USAGE_EXIT_CODE;
    }
    if (err instanceof ExitStatus) return err.code;
    ctx.err(
      describeError(err)
        .map((line) => `${line}\n`)
        .join(""),
    );
    return 1;
  }
}
