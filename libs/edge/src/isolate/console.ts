/** console.*: each call is one line to the host's log of the app (EdgeHost.log). */
import type { EdgeLogLevel } from "../contract.js";
import { tellHost } from "./host.js";

function describe(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.stack ?? `${value.name}: ${value.message}`;
  if (typeof value === "object" && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {
      return String(value);
    }
  }
  return String(value);
}

/** Lines written while requests run: they go to the host with the request's answer, before it. */
const held: [EdgeLogLevel, string][] = [];
let running = 0;

/** A request starts (its lines are held) or ends (the lines held go with its answer). */
export function requestStarted(): void {
  running++;
}

export function requestEnded(): [EdgeLogLevel, string][] {
  running--;
  return held.splice(0);
}

function line(level: EdgeLogLevel): (...args: unknown[]) => void {
  return (...args) => {
    const message = args.map(describe).join(" ");
    if (running > 0) held.push([level, message]);
    else tellHost("log", level, message);
  };
}

export const edgeConsole = {
  debug: line("debug"),
  log: line("info"),
  info: line("info"),
  warn: line("warn"),
  error: line("error"),
  trace: line("debug"),
  dir: line("info"),
};

/** An error nobody caught (a timer's callback, a waitUntil promise): logged as the app's error. */
export function reportError(error: unknown): void {
  edgeConsole.error("uncaught", error);
}
