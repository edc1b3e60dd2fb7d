/** Base class of the event store's errors: a machine code and whether retrying can help. */
export class EventStoreError extends Error {
  override name = "EventStoreError";
  constructor(
    message: string,
    readonly code: string,
    readonly retryable: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** An append expected the aggregate at one sequence and found it at another. Retryable: reload and decide again. */
export class ConcurrencyError extends EventStoreError {
  override name = "ConcurrencyError";
  constructor(
    readonly subject: string,
    readonly expected: number,
    readonly actual: number | undefined,
    options?: ErrorOptions,
  ) {
    super(
      `concurrency conflict on ${subject}: expected last sequence ${expected}, found ${actual ?? "unknown"}`,
      "CONCURRENCY_CONFLICT",
      true,
      options,
    );
  }
}

/** A command kept conflicting with other writers after every allowed retry. */
export class RetriesExhaustedError extends EventStoreError {
  override name = "RetriesExhaustedError";
  constructor(
    readonly aggregateId: string,
    readonly attempts: number,
    options?: ErrorOptions,
  ) {
    super(
      `gave up on ${aggregateId} after ${attempts} conflicting attempts`,
      "RETRIES_EXHAUSTED",
      true,
      options,
    );
  }
}

/** A decider refused a command: the command is wrong for the state, so retrying cannot help. */
export class DomainError extends EventStoreError {
  override name = "DomainError";
  constructor(message: string, code: string, options?: ErrorOptions) {
    super(message, code, false, options);
  }
}

/** Stored bytes that do not decode as the stream's events (unknown type, corrupt payload). */
export class DecodeError extends EventStoreError {
  override name = "DecodeError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, "DECODE_FAILED", false, options);
  }
}

/** True when `err` is a ConcurrencyError. */
export function isConcurrencyError(err: unknown): err is ConcurrencyError {
  return err instanceof ConcurrencyError;
}

/** True when `err` is a DomainError, optionally with the given code. */
export function isDomainError(err: unknown, code?: string): err is DomainError {
  return err instanceof DomainError && (code === undefined || err.code === code);
}

/** True when retrying the failed operation may succeed (conflicts, timeouts, lost connections). */
export function isRetryable(err: unknown): boolean {
  if (err instanceof EventStoreError) return err.retryable;
  return true;
}
