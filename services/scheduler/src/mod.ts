export type {
  AppMachine,
  Assessment,
  AutoscalerOptions,
  DecideScale,
  PassInput,
  PassResult,
  SetPanic,
} from "./autoscaler.js";
export {
  Autoscaler,
  DEFAULT_FAILURE_BACKOFF_MS,
  DEFAULT_PANIC_WINDOW_S,
  DEFAULT_STABLE_WINDOW_S,
  scaledMachines,
  templateOf,
} from "./autoscaler.js";
export type { ActionRef, ExecutorHooks, ExecutorStep } from "./executor.js";
export { DEFAULT_DRAIN_TIMEOUT_S } from "./executor.js";
export type { LeaderOptions, LeasedScheduler } from "./leader.js";
export { DEFAULT_LEASE_TTL_MS, runSchedulerUnderLease, SCHEDULER_LEASE } from "./leader.js";
export type { AppLoad, DrainStatus } from "./load.js";
export { LoadBoard, PROXY_LIVE_MS, parseLoadSample, parseProxyHeartbeat } from "./load.js";
export type { RunningScheduler, SchedulerOptions } from "./scheduler.js";
export { startScheduler } from "./scheduler.js";
