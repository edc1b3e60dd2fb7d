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

/**
 * The platform's error codes, for refusals by deciders and command handlers and for failures of the
 * bus between services, each with whether trying the same thing again later may succeed. The
 * gateway maps each to an HTTP status in one place (services/gateway/src/http/errors.ts).
 */
export const DOMAIN_ERROR_CODES = {
  /** The command or request is malformed. */
  invalid_argument: { retryable: false },
  /** The aggregate (app, machine, build, release, host) does not exist. */
  not_found: { retryable: false },
  /** Something with this id or name exists already. */
  already_exists: { retryable: false },
  /** The aggregate is in a state that does not allow the command. */
  failed_precondition: { retryable: false },
  /** Another holds what the command needs (a volume attached to another machine). */
  conflict: { retryable: false },
  /** A lease guards the machine and the caller does not hold it. */
  lease_held: { retryable: false },
  /** No host has room for the machine. */
  insufficient_capacity: { retryable: false },
  /** No service can carry out the command now (none subscribed, it is restarting, or its store did not answer). */
  unavailable: { retryable: true },
  /** The service did not answer in time; the command may or may not have been carried out. */
  timeout: { retryable: true },
  /** The handling service failed unexpectedly. */
  internal: { retryable: false },
} as const satisfies Record<string, { retryable: boolean }>;

/** One of the platform's error codes (DOMAIN_ERROR_CODES). */
export type DomainErrorCode = keyof typeof DOMAIN_ERROR_CODES;

/** True when `code` is one of the platform's error codes. */
export function isDomainErrorCode(code: unknown): code is DomainErrorCode {
  return typeof code === "string" && Object.hasOwn(DOMAIN_ERROR_CODES, code);
}

/** A decider refused a command: the command is wrong for the state, so retrying cannot help. */
export class DomainError extends EventStoreError {
  override name = "DomainError";
  declare readonly code: DomainErrorCode;
  constructor(message: string, code: DomainErrorCode, options?: ErrorOptions) {
    super(message, code, DOMAIN_ERROR_CODES[code].retryable, options);
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
export function isDomainError(err: unknown, code?: DomainErrorCode): err is DomainError {
  return err instanceof DomainError && (code === undefined || err.code === code);
}

/**
 * True when retrying the failed operation may succeed (conflicts, timeouts, lost connections). An
 * error says so itself (a boolean `retryable`, as EventStoreErrors have) or through its platform
 * code (`code` in DOMAIN_ERROR_CODES, as CommandErrors have). Anything else (a lost connection, a
 * failing database) counts as passing: a consumer then retries instead of dropping the message.
 */
export function isRetryable(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return true;
  const { retryable, code } = err as { retryable?: unknown; code?: unknown };
  if (typeof retryable === "boolean") return retryable;
  if (isDomainErrorCode(code)) return DOMAIN_ERROR_CODES[code].retryable;
  return true;
}
