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

/**
 * Lines held while requests run (they go to the host with an answer) are capped: at most
 * HELD_LINES_MAX lines and HELD_CHARS_MAX characters, each line cut at LINE_CHARS_MAX; the rest are
 * counted and noted in one line. The host limits an app's lines per second too (bridge.ts LogBudget).
 * What the cap uses is captured when the prelude loads: the app's code cannot bend it.
 */
const HELD_LINES_MAX = 200;
const HELD_CHARS_MAX = 256 * 1024;
const LINE_CHARS_MAX = 16 * 1024;
const slice = Function.prototype.call.bind(String.prototype.slice) as (
  s: string,
  a: number,
  b: number,
) => string;
const map = Function.prototype.call.bind(Array.prototype.map) as <T, U>(a: T[], f: (v: T) => U) => U[];
const join = Function.prototype.call.bind(Array.prototype.join) as (a: string[], sep: string) => string;

/** Lines written while requests run: they go to the host with the request's answer, before it. */
let held: [EdgeLogLevel, string][] = [];
let heldChars = 0;
let dropped = 0;
let running = 0;

/** A request starts (its lines are held) or ends (the lines held go with its answer). */
export function requestStarted(): void {
  running++;
}

export function requestEnded(): [EdgeLogLevel, string][] {
  running--;
  const lines = held;
  if (dropped > 0)
    lines[lines.length] = [
      "warn",
      `${dropped} console lines dropped (more than ${HELD_LINES_MAX} lines or ${HELD_CHARS_MAX} characters while requests ran)`,
    ];
  held = [];
  heldChars = 0;
  dropped = 0;
  return lines;
}

function hold(level: EdgeLogLevel, message: string): void {
  if (held.length >= HELD_LINES_MAX || heldChars + message.length > HELD_CHARS_MAX) {
    dropped++;
    return;
  }
  heldChars += message.length;
  held[held.length] = [level, message];
}

function line(level: EdgeLogLevel): (...args: unknown[]) => void {
  return (...args) => {
    const whole = join(map(args, describe), " ");
    const message =
      whole.length > LINE_CHARS_MAX
        ? `${slice(whole, 0, LINE_CHARS_MAX)}... (${whole.length} characters)`
        : whole;
    if (running > 0) hold(level, message);
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
