export type { CgroupRef, CgroupVersion, SuspendMode } from "./cgroup.js";
export { DEFAULT_GUEST } from "./cgroup-limits.js";
export type {
  CheckChangeListener,
  CheckDefinition,
  CheckPortMap,
  CheckStatus,
  ChecksHandle,
  CheckTarget,
} from "./checks.js";
export { runChecks } from "./checks.js";
export { parseDuration } from "./duration.js";
export {
  DriverClosedError,
  DriverError,
  InvalidCheckError,
  InvalidDurationError,
  InvalidMachineSpecError,
  InvalidSignalError,
  MachineAlreadyRunningError,
  MachineBusyError,
  MachineNotRunningError,
  MachineStartError,
  MachineSuspendError,
} from "./errors.js";
export type { LogEntry } from "./machine-log.js";
export type {
  AdoptResult,
  ExitListener,
  LogListener,
  ProcessDriverOptions,
  StopOptions,
  SuspendInfo,
} from "./process-driver.js";
export { ProcessDriver } from "./process-driver.js";
export type { RestartPolicy } from "./restart.js";
export { DEFAULT_MAX_RETRIES, restartDecision } from "./restart.js";
export { parseSignal } from "./signals.js";
export type {
  ExitInfo,
  GuestSize,
  LogStream,
  MachineFile,
  MachineRunSpec,
  RunningMachine,
  SandboxNetwork,
  SandboxSpec,
  VolumeMount,
} from "./types.js";
