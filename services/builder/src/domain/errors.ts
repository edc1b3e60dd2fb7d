/** What went wrong with a build, tied to a Dockerfile line when there is one. */
export interface BuildFailureDetails {
  /** Dockerfile line (1-based); 0 when the failure is not tied to one. */
  line?: number;
  /** The instruction as written. */
  instruction?: string;
  /** The failing command's output (RUN). */
  output?: string;
  /** The failing command's exit code (RUN). */
  exitCode?: number;
}

/**
 * A build that cannot go on, for a reason the Dockerfile or the context caused (not the builder):
 * its message is what the user reads in BuildFailed.
 */
export class BuildError extends Error {
  readonly line: number;
  readonly instruction: string;
  readonly output: string;
  readonly exitCode: number | undefined;

  constructor(
    readonly code: string,
    message: string,
    details: BuildFailureDetails = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
    this.line = details.line ?? 0;
    this.instruction = details.instruction ?? "";
    this.output = details.output ?? "";
    this.exitCode = details.exitCode;
  }
}

/** The Dockerfile does not parse, or asks for something it may not (unknown stage, bad flag, ...). */
export class DockerfileError extends BuildError {
  constructor(message: string, details: BuildFailureDetails = {}) {
    super("dockerfile_invalid", message, details);
  }
}

/** An instruction (or a form or flag of one) that Hangar's builder does not implement. */
export class UnsupportedInstructionError extends BuildError {
  constructor(message: string, details: BuildFailureDetails = {}) {
    super("instruction_unsupported", message, details);
  }
}

/** A COPY or ADD source that is missing, outside the context, or a URL. */
export class CopySourceError extends BuildError {
  constructor(message: string, details: BuildFailureDetails = {}) {
    super("copy_source_invalid", message, details);
  }
}

/** A RUN command that exited with a non-zero status. */
export class RunFailedError extends BuildError {
  constructor(message: string, details: BuildFailureDetails) {
    super("run_failed", message, details);
  }
}

/** True for errors a build's Dockerfile or context caused, as opposed to the builder failing. */
export function isBuildError(err: unknown): err is BuildError {
  return err instanceof BuildError;
}
