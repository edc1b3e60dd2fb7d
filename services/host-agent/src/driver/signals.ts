import { constants } from "node:os";
import { InvalidSignalError } from "./errors.js";

const numbers: Readonly<Record<string, number>> = constants.signals;

const names = new Map<number, string>();
for (const [name, n] of Object.entries(numbers)) {
  // Aliases share a number (SIGIOT = SIGABRT, SIGPOLL = SIGIO); the first listed is the usual name.
  if (!names.has(n)) names.set(n, name);
}

/** Checks that `name` is a signal of this platform (e.g. "SIGTERM") and returns it typed. */
export function parseSignal(name: string): NodeJS.Signals {
  if (!Object.hasOwn(numbers, name)) throw new InvalidSignalError(name);
  return name as NodeJS.Signals;
}

/** The name of signal number `n`, or "SIG<n>" for one Node has no name for (real-time signals). */
export function signalName(n: number): string {
  return names.get(n) ?? `SIG${n}`;
}

/** The number of a signal name known to be valid. */
export function signalNumber(name: NodeJS.Signals): number {
  return numbers[name] ?? 0;
}
