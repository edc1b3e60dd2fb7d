/** A program the testkit needs is not installed; the message says how to install it. */
export class MissingBinaryError extends Error {
  override readonly name = "MissingBinaryError";
  readonly code = "MISSING_BINARY";

  constructor(
    readonly binary: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Postgres refuses to run as root and there is no unprivileged system user to run it as. */
export class MissingSystemUserError extends Error {
  override readonly name = "MissingSystemUserError";
  readonly code = "MISSING_SYSTEM_USER";

  constructor(
    readonly user: string,
    options?: ErrorOptions,
  ) {
    super(
      `Postgres refuses to run as root and there is no "${user}" system user to run it as. ` +
        `Create one (useradd --system ${user}) or run as a non-root user.`,
      options,
    );
  }
}

/** A server process did not come up; the message carries the tail of its log. */
export class ServerStartError extends Error {
  override readonly name = "ServerStartError";
  readonly code = "SERVER_START_FAILED";

  constructor(
    readonly server: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A helper program (initdb, pg_ctl, ...) exited unsuccessfully. */
export class CommandFailedError extends Error {
  override readonly name = "CommandFailedError";
  readonly code = "COMMAND_FAILED";

  constructor(
    readonly command: readonly string[],
    readonly stderr: string,
    options?: ErrorOptions,
  ) {
    super(`${command.join(" ")} failed: ${stderr.trim() || String(options?.cause)}`, options);
  }
}

/** Something the testkit waits for did not happen in time. */
export class TimeoutError extends Error {
  override readonly name = "TimeoutError";
  readonly code = "TIMEOUT";

  constructor(what: string, timeoutMs: number, options?: ErrorOptions) {
    super(`Timed out after ${timeoutMs} ms waiting for ${what}`, options);
  }
}
