import { type Command, InvalidArgumentError } from "commander";
import { ApiError } from "../api.js";
import { loadAppConfig, resolveAppName } from "../app-config.js";
import { CliError, ExitStatus } from "../cli-error.js";
import { type Context, printJson } from "../context.js";
import { positiveInt } from "../options.js";

/** The gateway's default and largest exec timeout, in seconds. */
const DEFAULT_TIMEOUT_S = 30;
const MAX_TIMEOUT_S = 60;

interface ExecFlags {
  app?: string;
  timeout: number;
  json?: boolean;
}

function timeoutSeconds(value: string): number {
  const n = positiveInt(value);
  if (n > MAX_TIMEOUT_S) throw new InvalidArgumentError(`at most ${MAX_TIMEOUT_S} seconds`);
  return n;
}

async function exec(ctx: Context, id: string, command: string[], flags: ExecFlags): Promise<void> {
  const app = resolveAppName(flags.app, flags.app ? undefined : await loadAppConfig(ctx.cwd));
  const api = await ctx.api();
  let res: Awaited<ReturnType<typeof api.execMachine>>;
  try {
    res = await api.execMachine(app, id, { command, timeout: flags.timeout });
  } catch (err) {
    if (err instanceof ApiError && err.code === "failed_precondition")
      throw new CliError(err.message, `start it with \`hangar machine start ${id} -a ${app}\``);
    throw err;
  }
  if (flags.json) printJson(ctx, res);
  else {
    ctx.out(res.stdout);
    ctx.err(res.stderr);
    if (res.exit_signal !== 0) ctx.err(`command killed by signal ${res.exit_signal}\n`);
  }
  // A shell's convention: death by signal n is 128 + n.
  const code = res.exit_signal !== 0 ? 128 + res.exit_signal : res.exit_code;
  if (code !== 0) throw new ExitStatus(code);
}

/** `hangar machine exec <id> -- <command...>`: Fly's exec, printing the output and exiting with the command's code. */
export function registerMachineExec(machine: Command, ctx: Context): void {
  machine
    .command("exec <id> <command...>")
    .description(
      "run a command inside a started machine, print its output and exit with its exit code " +
        "(put the command after --: `hangar machine exec <id> -- ls -la`)",
    )
    .option("-a, --app <name>", "app (default: `app` in hangar.toml or fly.toml here)")
    .option(
      "--timeout <seconds>",
      `how long the command may run before it is killed, at most ${MAX_TIMEOUT_S}`,
      timeoutSeconds,
      DEFAULT_TIMEOUT_S,
    )
    .option("--json", "print the API's answer (stdout, stderr, exit_code, exit_signal) as JSON")
    .action((id: string, command: string[], flags: ExecFlags) => exec(ctx, id, command, flags));
}
