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
  config?: string;
}

async function sshConsole(ctx: Context, flags: ConsoleFlags): Promise<void> {
  const app = resolveAppName(flags.app, flags.app ? undefined : await loadAppConfig(ctx.cwd));
  // As Fly's: a shell gets a terminal when the user has one; a command only when asked (--pty).
  await consoleSession(
    ctx,
    app,
    flags,
    flags.pty ?? (flags.command === undefined && ctx.stdin?.isTTY === true),
  );
}

/**
 * `hangar console`, as `fly console`: the app config's `console_command` (a Rails console, an IEx
 * shell...), or -C's command, or a login shell, in a started machine of the app, with a terminal when
 * the user has one. Unlike flyctl it does not make a machine for it: it runs in one that is started.
 */
async function appConsole(ctx: Context, flags: ConsoleFlags): Promise<void> {
  const loaded = await loadAppConfig(ctx.cwd, flags.config);
  const app = resolveAppName(flags.app, flags.app ? undefined : loaded);
  // The file's console_command is its app's: another app (-a) gets a login shell unless -C says otherwise.
  const ownApp = flags.app === undefined || flags.app === loaded?.config.app;
  const command = flags.command ?? (ownApp ? loaded?.config.console_command : undefined);
  await consoleSession(ctx, app, { ...flags, command }, flags.pty ?? ctx.stdin?.isTTY === true);
}

async function consoleSession(ctx: Context, app: string, flags: ConsoleFlags, tty: boolean): Promise<void> {
  const api = await ctx.api();
  const { stdin } = ctx;
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
  program
    .command("console")
    .description(
      "run the app's console_command (from hangar.toml or fly.toml; -C for another, a login shell when " +
        "there is none) inside a started machine of the app, with a terminal when you have one; as " +
        "`fly console`, but in a started machine rather than a new one",
    )
    .option("-a, --app <name>", "app (default: `app` in hangar.toml or fly.toml here)")
    .option("-c, --config <file>", "app config file (default: hangar.toml, else fly.toml)")
    .option("--machine <id>", "the machine (default: any started machine of the app)")
    .option("-C, --command <command>", "run this command line instead of console_command")
    .option("--pty", "give the command a terminal (the default on a terminal)")
    .option("--no-pty", "never give the command a terminal")
    .action((flags: ConsoleFlags) => appConsole(ctx, flags));
}
