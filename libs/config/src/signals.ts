import { z } from "zod";

/** Signals the Machines API accepts on `POST .../signal` (the spec's SignalRequest enum). */
export const SIGNALS = [
  "SIGABRT",
  "SIGALRM",
  "SIGFPE",
  "SIGHUP",
  "SIGILL",
  "SIGINT",
  "SIGKILL",
  "SIGPIPE",
  "SIGQUIT",
  "SIGSEGV",
  "SIGTERM",
  "SIGTRAP",
  "SIGUSR1",
] as const;

/** Signals a machine can be stopped with: Fly's stop_config and stop request also document SIGUSR2. */
export const STOP_SIGNALS = [...SIGNALS, "SIGUSR2"] as const;

export type Signal = (typeof SIGNALS)[number];
export type StopSignal = (typeof STOP_SIGNALS)[number];

// Linux numbering: flyctl's `machine kill` sends {"signal": 9}, not a name.
const BY_NUMBER = new Map<number, StopSignal>([
  [1, "SIGHUP"],
  [2, "SIGINT"],
  [3, "SIGQUIT"],
  [4, "SIGILL"],
  [5, "SIGTRAP"],
  [6, "SIGABRT"],
  [8, "SIGFPE"],
  [9, "SIGKILL"],
  [10, "SIGUSR1"],
  [11, "SIGSEGV"],
  [12, "SIGUSR2"],
  [13, "SIGPIPE"],
  [14, "SIGALRM"],
  [15, "SIGTERM"],
]);

const byNumber = (value: unknown): unknown =>
  typeof value === "number" ? (BY_NUMBER.get(value) ?? value) : value;

/** A signal name from SIGNALS, or its Linux number, parsed to the name. */
export const SignalSchema = z.preprocess(byNumber, z.enum(SIGNALS));

/** A signal name from STOP_SIGNALS, or its Linux number, parsed to the name. */
export const StopSignalSchema = z.preprocess(byNumber, z.enum(STOP_SIGNALS));
