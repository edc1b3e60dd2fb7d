/** Base class of the machine driver's errors, with a machine-readable code. */
export class DriverError extends Error {
  override name = "DriverError";
  constructor(
    message: string,
    readonly code: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The machine has no running process on this driver. */
export class MachineNotRunningError extends DriverError {
  override name = "MachineNotRunningError";
  constructor(readonly machineId: string) {
    super(`machine ${machineId} is not running`, "MACHINE_NOT_RUNNING");
  }
}

/** The machine already runs (or is being started) on this driver. */
export class MachineAlreadyRunningError extends DriverError {
  override name = "MachineAlreadyRunningError";
  constructor(readonly machineId: string) {
    super(`machine ${machineId} is already running`, "MACHINE_ALREADY_RUNNING");
  }
}

/** Another start, adoption or destroy of the machine is in progress. */
export class MachineBusyError extends DriverError {
  override name = "MachineBusyError";
  constructor(readonly machineId: string) {
    super(`another operation on machine ${machineId} is in progress`, "MACHINE_BUSY");
  }
}

/** A signal name that is not one of the platform's signals (SIGTERM, SIGUSR1, ...). */
export class InvalidSignalError extends DriverError {
  override name = "InvalidSignalError";
  constructor(readonly signal: string) {
    super(`not a signal name: ${JSON.stringify(signal)}`, "INVALID_SIGNAL");
  }
}

/** A run spec the driver cannot run (bad machine id, empty command, bad address). */
export class InvalidMachineSpecError extends DriverError {
  override name = "InvalidMachineSpecError";
  constructor(reason: string) {
    super(`invalid machine spec: ${reason}`, "INVALID_MACHINE_SPEC");
  }
}

/** The process could not be started, or its state could not be recorded. */
export class MachineStartError extends DriverError {
  override name = "MachineStartError";
  constructor(
    readonly machineId: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`machine ${machineId} failed to start: ${reason}`, "MACHINE_START_FAILED", options);
  }
}

/** The machine's processes could not all be frozen (or stopped) in time; it was left running. */
export class MachineSuspendError extends DriverError {
  override name = "MachineSuspendError";
  constructor(
    readonly machineId: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(
      `machine ${machineId} could not be suspended: ${reason}; it keeps running (stop it, or suspend it again)`,
      "MACHINE_SUSPEND_FAILED",
      options,
    );
  }
}

/** The driver was closed while the call waited. */
export class DriverClosedError extends DriverError {
  override name = "DriverClosedError";
  constructor() {
    super("the driver is closed", "DRIVER_CLOSED");
  }
}

/** Not a Go duration string such as "10s", "500ms" or "1m30s". */
export class InvalidDurationError extends DriverError {
  override name = "InvalidDurationError";
  constructor(readonly input: string) {
    super(`invalid duration: ${JSON.stringify(input)}`, "INVALID_DURATION");
  }
}

/** A health check definition the runner cannot run. */
export class InvalidCheckError extends DriverError {
  override name = "InvalidCheckError";
  constructor(
    readonly check: string,
    reason: string,
  ) {
    super(`invalid check ${check}: ${reason}`, "INVALID_CHECK");
  }
}
