import type { Command } from "commander";
import { ApiError } from "../api.js";
import { loadAppConfig, resolveAppName } from "../app-config.js";
import { CliError, ExitStatus } from "../cli-error.js";
import type { Context } from "../context.js";
import { runConsoleSession } from "../tunnel.js";

interface ConsoleFlags {
  app?: string;
  machine?: string;
  command?: string;
  pty?: boolean;
}

async function sshConsole(ctx: Context, flags: ConsoleFlags): Promise<void> {
  const app = resolveAppName(flags.app, flags.app ? undefined : await loadAppConfig(ctx.cwd));
  const api = await ctx.api();
  const { stdin } = ctx;
  // As Fly's: a shell gets a terminal when the user has one; a command only when asked (--pty).
  const tty = flags.pty ?? (flags.command === undefined && stdin?.isTTY === true);
  const { cols, rows } = ctx.terminalSize();
  let socket: Awaited<ReturnType<typeof api.openTunnel>>;
  try {
    socket = await api.openTunnel(app, flags.machine, "console", {
      cmd: flags.command,
      tty: tty ? 1 : undefined,
      cols,
      rows,
    });
  } catch (err) {
    if (err instanceof ApiError && err.code === "failed_precondition")
      throw new CliError(
        err.message,
        flags.machine
          ? `start it with \`hangar machine start ${flags.machine} -a ${app}\``
          : `start one: \`hangar machine list -a ${app}\` shows them`,
      );
    throw err;
  }
  // Raw mode: every key (Ctrl-C, Ctrl-D, arrows) goes to the remote terminal, which echoes and edits.
  const raw = tty && stdin?.isTTY === true && stdin.setRawMode !== undefined;
  if (raw) stdin?.setRawMode?.(true);
  let code: number;
  try {
    code = await runConsoleSession(socket, { out: ctx.out, err: ctx.err, ...(stdin ? { stdin } : {}) });
  } finally {
    if (raw) stdin?.setRawMode?.(false);
    // Input still open (a terminal) would keep the CLI alive after the session.
    stdin?.pause();
  }
  if (code !== 0) throw new ExitStatus(code);
}

/** `hangar ssh console -a <app> [--machine <id>] [-C <command>]`: a shell or one command inside a machine. */
export function registerSsh(program: Command, ctx: Context): void {
  program
    .command("ssh")
    .description("reach inside an app's machines")
    .command("console")
    .description(
      "run an interactive shell (on a terminal) or one command (-C) inside a started machine of the app, " +
        "through the gateway; exits with the remote command's exit code",
    )
    .option("-a, --app <name>", "app (default: `app` in hangar.toml or fly.toml here)")
    .option("--machine <id>", "the machine (default: any started machine of the app)")
    .option("-C, --command <command>", "run this command line instead of a login shell (/bin/sh -l)")
    .option("--pty", "give the command a terminal even with -C (the default for a shell on a terminal)")
    .option("--no-pty", "never give the command a terminal")
    .action((flags: ConsoleFlags) => sshConsole(ctx, flags));
}
