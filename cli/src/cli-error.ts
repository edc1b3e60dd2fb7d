/** An error with a message meant for the user and, maybe, what to do about it. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** Ends the CLI with `code` and prints nothing more: the command has said what there was to say. */
export class ExitStatus extends Error {
  override name = "ExitStatus";
  constructor(readonly code: number) {
    super(`exit status ${code}`);
  }
}
